"""Predictions from a saved model: labels with probabilities, or regression values.

    import auxprune
    auxprune.predict("runs/rte", ["A man plays."], pairs=["Someone plays."])
    # [{"label": "entailment", "score": 0.93}]
    auxprune.predict("runs/stsb", ["A man plays."], pairs=["Someone plays."])
    # [{"value": 3.87}]   (a bi-encoder, model.head=bi, adds the pair's "cosine")

Texts are tokenized as in training (truncated to the model's `max_seq_len`), sorted by length
and batched so that each batch pads to its own longest example; results come back in input order.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path

import torch

from auxprune.errors import UserError
from auxprune.model.inputs import MODEL_INPUTS, pad_batch, truncation_length


def _model_and_tokenizer(model):
    if isinstance(model, (str, Path)):
        from auxprune.model.loading import load

        return load(model)
    if isinstance(model, (tuple, list)) and len(model) == 2:
        return model[0], model[1]
    raise UserError("predict: pass a model folder, or a (model, tokenizer) pair")


def _check_texts(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence):
        raise UserError(f"predict: {name} must be a list of strings")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(f"predict: {name}[{index}] is {type(text).__name__}, not a string")
    return list(texts)


def predict_texts(model, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None,
                  batch_size: int = 32) -> list[dict]:
    """One result per input text (or text pair), in input order.

    `model` is a run folder, a model folder, or a `(model, tokenizer)` pair. Classification
    models give `{"label": name, "score": probability}` (label names from `config.id2label`);
    regression models (one output) give `{"value": float}`.
    """
    model, tokenizer = _model_and_tokenizer(model)
    if hasattr(model, "require_task_head"):  # an ONNX file
        model.require_task_head()
    texts = _check_texts(texts, "texts")
    if pairs is not None:
        pairs = _check_texts(pairs, "pairs")
        if len(pairs) != len(texts):
            raise UserError(f"predict: {len(texts)} texts but {len(pairs)} pairs; give one pair per text")
    if batch_size < 1:
        raise UserError(f"predict: batch_size must be at least 1, got {batch_size}")
    if not texts:
        return []
    config = model.config
    if getattr(config, "head", "cross") == "bi":
        return _compare_pairs(model, tokenizer, texts, pairs, batch_size)
    encoded = tokenizer(texts, pairs, truncation=True, max_length=truncation_length(config), padding=False,
                        return_token_type_ids=True, return_attention_mask=False)
    ids, segments = encoded["input_ids"], encoded["token_type_ids"]
    pad, device = _pad_id(tokenizer, config), next(model.parameters()).device

    def score(rows: list[int]) -> list[dict]:
        batch = pad_batch([ids[i] for i in rows], pad, [segments[i] for i in rows])
        return _results(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu(), config)

    return _in_batches(model, sorted(range(len(texts)), key=lambda i: len(ids[i])), batch_size, score)


def _compare_pairs(model, tokenizer, texts: list[str], pairs: list[str] | None, batch_size: int) -> list[dict]:
    """A bi-encoder: each side encoded on its own, then compared; the cosine is in every result."""
    if pairs is None:
        raise UserError("predict: a bi-encoder compares two texts; give a pair for each text "
                        "(or write sentence embeddings with `auxprune embed`)")
    config = model.config
    sides = [tokenizer(t, truncation=True, max_length=truncation_length(config), padding=False)["input_ids"]
             for t in (texts, pairs)]
    pad, device = _pad_id(tokenizer, config), next(model.parameters()).device

    def score(rows: list[int]) -> list[dict]:
        # every A side, then every B side: the layout a bi-encoder's head reads (as `data.batching.collate`)
        batch = pad_batch([sides[0][i] for i in rows] + [sides[1][i] for i in rows], pad)
        out = model(**{k: batch[k].to(device) for k in MODEL_INPUTS})
        u, v = out.embeddings.float().cpu().chunk(2)
        cosines = torch.nn.functional.cosine_similarity(u, v, dim=-1).tolist()
        results = _results(model.to_label_units(out.logits.float().cpu()), config)
        return [{**result, "cosine": cosine} for result, cosine in zip(results, cosines)]

    order = sorted(range(len(texts)), key=lambda i: max(len(sides[0][i]), len(sides[1][i])))
    return _in_batches(model, order, batch_size, score)


def _pad_id(tokenizer, config) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (config.pad_token_id or 0)


def _in_batches(model, order: list[int], batch_size: int, score) -> list[dict]:
    """`score(rows)` over batches of `order` (rows sorted by length, so each batch pads little), in eval
    mode without gradients; the results come back in input order."""
    was_training = model.training
    model.eval()
    results: list[dict | None] = [None] * len(order)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                for row, result in zip(rows, score(rows)):
                    results[row] = result
    finally:
        model.train(was_training)
    return results


def _results(logits: torch.Tensor, config) -> list[dict]:
    if logits.shape[-1] == 1:
        return [{"value": float(v)} for v in logits[:, 0].tolist()]
    probs = logits.softmax(-1)
    scores, indices = probs.max(-1)
    names = config.id2label or {}
    return [{"label": str(names.get(i, names.get(str(i), f"LABEL_{i}"))), "score": float(s)}
            for i, s in zip(indices.tolist(), scores.tolist())]


class _CallableModule(types.ModuleType):
    """`import auxprune.predict` makes `auxprune.predict` this module; keep it callable as the function."""

    def __call__(self, *args, **kwargs):
        return predict_texts(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
