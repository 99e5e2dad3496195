"""Tokenize once, then batch with dynamic padding (pad to the longest example in each batch)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

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


class BucketBatchSampler(Sampler[list[int]]):
    """Random batches of similar length: shuffle, sort within windows of many batches, shuffle the batches.

    Padding is most of the cost of a CPU step on short-text tasks; this keeps the randomness of
    plain shuffling at the scale of a window while removing most of the padding.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, window: int = 50):
        self.lengths, self.batch_size, self.window = list(lengths), batch_size, window
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for index in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[index]

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def make_loader(encoded: list[dict], batch_size: int, pad_id: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Training loaders shuffle by length buckets; evaluation loaders sort by length and carry indices."""
    collate_fn = lambda items: _with_index(items, pad_id)  # noqa: E731
    if shuffle:
        sampler = BucketBatchSampler([len(item["input_ids"]) for item in encoded], batch_size, seed)
        return DataLoader(encoded, batch_sampler=sampler, collate_fn=collate_fn)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    return DataLoader([dict(encoded[i], index=i) for i in order], batch_size=batch_size, collate_fn=collate_fn)


def _with_index(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    batch = collate(items, pad_id)
    if "index" in items[0]:
        batch["index"] = torch.tensor([item["index"] for item in items])
    return batch
