"""Tokenize once, then batch with dynamic padding (pad to the longest example in each batch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader

from auxprune.data.tasks import Example


def encode(examples: Sequence[Example], tokenizer, max_len: int) -> list[dict]:
    """Token ids per example, truncated to `max_len`; no padding yet."""
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_len, padding=False,
                    return_token_type_ids=True, return_attention_mask=False)
    return [
        {"input_ids": ids, "token_type_ids": types, "label": e.label}
        for ids, types, e in zip(enc["input_ids"], enc["token_type_ids"], examples)
    ]


def collate(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(item["input_ids"]) for item in items)
    ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    types = torch.zeros((len(items), length), dtype=torch.long)
    mask = torch.zeros((len(items), length), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        types[row, :n] = torch.tensor(item["token_type_ids"])
        mask[row, :n] = 1
    labels = [item["label"] for item in items]
    dtype = torch.float if isinstance(labels[0], float) else torch.long
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": torch.tensor(labels, dtype=dtype)}


def make_loader(encoded: list[dict], batch_size: int, pad_id: int, shuffle: bool, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    if not shuffle:
        # Evaluation: batch similar lengths together so padding costs little; order is restored by index.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
        encoded = [dict(encoded[i], index=i) for i in order]
    return DataLoader(encoded, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=lambda items: _with_index(items, pad_id))


def _with_index(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    batch = collate(items, pad_id)
    if "index" in items[0]:
        batch["index"] = torch.tensor([item["index"] for item in items])
    return batch
