"""The untrained model as a bar to clear: a sentence-embedding model used as its authors intended.

all-MiniLM-L6-v2 and other sentence-transformers checkpoints are trained so that the cosine
similarity of two sentences' pooled embeddings measures how related they are. On a sentence-pair
task that needs no training at all: regression scores are the cosines themselves (correlations
ignore scale), and a binary label is a threshold on the cosine, fitted on the training pairs. A
fine-tuned or pruned model that scores below this is worse than doing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from auxprune.data.metrics import compute_metrics
from auxprune.data.tasks import Example, TaskSpec

METHOD = "cosine of the untrained model's pooled sentence embeddings"
THRESHOLD_FIT_EXAMPLES = 1000  # training pairs used to fit a classification threshold: enough, and seconds
SPREAD_SENTENCES = 64  # distinct dev sentences whose embeddings say whether a bi-encoder still tells them apart


def is_sentence_embedding_model(path: Path) -> bool:
    """A sentence-transformers folder: its embeddings are meant to be compared by cosine."""
    return (path / "modules.json").is_file()


@torch.no_grad()
def sentence_embeddings(encoder, tokenizer, texts: Sequence[str], max_len: int, batch_size: int = 128,
                        desc: str = "embed") -> torch.Tensor:
    """Pooled embeddings of single sentences (the encoder's own pooling), in the order given.

    Sorted by length for batching, so that little of each batch is padding. A bar named `desc`
    shows progress (a base-size model takes minutes over a dev set on a CPU).
    """
    from tqdm.auto import tqdm

    from auxprune import distributed

    encoder.eval()
    device = next(encoder.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), encoder.pooled_size)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=not distributed.is_main()):
        chunk = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in chunk], truncation=True, max_length=max_len, padding=True, return_tensors="pt",
                        return_token_type_ids=True)
        pooled, _ = encoder.encode(enc["input_ids"].to(device), enc["attention_mask"].to(device), enc["token_type_ids"].to(device))
        out[chunk] = pooled.float().cpu()
    return out


def pair_cosines(encoder, tokenizer, examples: Sequence[Example], max_len: int, desc: str = "untrained model") -> np.ndarray:
    """Cosine similarity of each pair's two sides, each encoded on its own."""
    texts = sorted({t for e in examples for t in (e.text_a, e.text_b)})
    index = {t: i for i, t in enumerate(texts)}
    emb = sentence_embeddings(encoder, tokenizer, texts, max_len, desc=desc)
    a = emb[[index[e.text_a] for e in examples]]
    b = emb[[index[e.text_b] for e in examples]]
    return F.cosine_similarity(a, b, dim=-1).numpy()


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """The cut on `scores` (and its direction) that classifies binary `labels` best.

    Returns (threshold, above_is_positive): predict class 1 when score >= threshold, or when
    score < threshold if `above_is_positive` is False. Ties in accuracy go to the lower threshold.
    """
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], labels[order].astype(int)
    n, positives = len(y), int(y.sum())
    # Candidate k: the k lowest scores go below the cut. Ones below and ones at or above, per k.
    ones_below = np.concatenate([[0], np.cumsum(y)])
    k = np.arange(n + 1)
    correct_up = (k - ones_below) + (positives - ones_below)  # below -> 0, above -> 1
    correct_down = ones_below + (n - k - (positives - ones_below))  # below -> 1, above -> 0
    # A cut can only sit between distinct scores.
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = s[1:] > s[:-1]
    up = np.where(valid, correct_up, -1)
    down = np.where(valid, correct_down, -1)
    above_is_positive = up.max() >= down.max()
    best = int(np.argmax(up if above_is_positive else down))
    if best == 0:
        threshold = float(s[0]) if n else 0.0
    elif best == n:
        threshold = float(s[-1]) + 1e-6
    else:
        threshold = float((s[best - 1] + s[best]) / 2)
    return threshold, bool(above_is_positive)


def untrained_cosine_score(encoder, tokenizer, spec: TaskSpec, train: Sequence[Example], dev: Sequence[Example],
                           max_len: int) -> dict | None:
    """Dev metrics of the untrained encoder's cosine similarity, or None where it does not apply
    (single sentences, more than two classes)."""
    if not dev or dev[0].text_b is None:
        return None
    if spec.kind == "classification" and spec.num_labels != 2:
        return None
    dev_cos = pair_cosines(encoder, tokenizer, dev, max_len, desc="untrained model, dev")
    labels = [e.label for e in dev]
    if spec.kind == "regression":
        return {"method": METHOD, "metrics": compute_metrics(spec, dev_cos.tolist(), labels)}
    fit = list(train[:THRESHOLD_FIT_EXAMPLES])
    threshold, above = fit_threshold(pair_cosines(encoder, tokenizer, fit, max_len, desc="untrained model, threshold"),
                                     np.array([e.label for e in fit]))
    predictions = ((dev_cos >= threshold) == above).astype(int)
    return {"method": METHOD + f", class 1 {'at or above' if above else 'below'} {threshold:.4f} (fit on "
                      f"{len(fit)} training pairs)",
            "threshold": round(threshold, 6), "class1_above": above,
            "metrics": compute_metrics(spec, predictions.tolist(), labels)}


def distinct_first_sentences(examples: Sequence[Example], count: int = SPREAD_SENTENCES) -> list[str]:
    """The first `count` distinct first-side texts, in order: different sentences, as a spread check needs."""
    seen: dict[str, None] = {}
    for example in examples:
        seen.setdefault(example.text_a, None)
        if len(seen) == count:
            break
    return list(seen)


def off_diagonal_cosines(vectors: torch.Tensor) -> torch.Tensor:
    """The cosine between every two different rows (each pair twice), flattened."""
    unit = F.normalize(vectors.float(), dim=-1)
    cosines = unit @ unit.T
    return cosines[~torch.eye(len(unit), dtype=torch.bool)]


def embedding_spread(encoders: dict, tokenizer, texts: Sequence[str], max_len: int) -> dict:
    """The mean cosine between the embeddings of different `texts`, per named encoder (1.0: every text maps to
    the same vector, a collapsed bi-encoder; a healthy sentence encoder is far below)."""
    spread = {"sentences": len(texts)}
    for name, encoder in encoders.items():
        vectors = sentence_embeddings(encoder, tokenizer, texts, max_len, desc=f"spread {name}")
        spread[f"{name}_mean_cosine"] = round(float(off_diagonal_cosines(vectors).mean()), 4)
    return spread
