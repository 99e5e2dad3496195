"""Tokenize once, then batch with dynamic padding (pad to the longest example in each batch)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from auxprune import distributed
from auxprune.data.tasks import Example
from auxprune.model.inputs import pad_batch


def encode(examples: Sequence[Example], tokenizer, max_len: int, separate: bool = False) -> list[dict]:
    """Token ids per example, truncated to `max_len`; no padding yet.

    A pair is one sequence (cross-encoder), or with `separate` two (bi-encoder: `input_ids` holds
    side A, `input_ids_b` side B, each truncated to `max_len` on its own).
    """
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples and examples[0].text_b is not None else None
    if separate and texts_b is not None:
        sides = [tokenizer(texts, truncation=True, max_length=max_len, padding=False, return_token_type_ids=False,
                           return_attention_mask=False)["input_ids"] for texts in (texts_a, texts_b)]
        return [{"input_ids": a, "input_ids_b": b, "label": e.label} for a, b, e in zip(*sides, examples)]
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_len, padding=False,
                    return_token_type_ids=True, return_attention_mask=False)
    return [
        {"input_ids": ids, "token_type_ids": types, "label": e.label}
        for ids, types, e in zip(enc["input_ids"], enc["token_type_ids"], examples)
    ]


def item_length(item: dict) -> int:
    """Tokens of an encoded example's longest sequence: what padding its batch costs."""
    return max(len(item["input_ids"]), len(item.get("input_ids_b", ())))


def collate(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch. Pairs encoded apart become one batch of 2n rows, every A side then every B side
    (the layout a bi-encoder's `PairHead` reads), with `pairs` set."""
    if "input_ids_b" in items[0]:
        sides = [{"input_ids": item["input_ids"], "label": item["label"]} for item in items]
        sides += [{"input_ids": item["input_ids_b"], "label": item["label"]} for item in items]
        batch = collate(sides, pad_id)
        batch["labels"] = batch["labels"][: len(items)]
        batch["pairs"] = torch.tensor(True)
        return batch
    batch = pad_batch([item["input_ids"] for item in items], pad_id, [item.get("token_type_ids") for item in items])
    labels = [item["label"] for item in items]
    dtype = torch.float if isinstance(labels[0], float) else torch.long
    return {**batch, "labels": torch.tensor(labels, dtype=dtype)}


class BucketBatchSampler(Sampler[list[int]]):
    """Random batches of similar length: shuffle, sort within windows of many batches, shuffle the batches.

    Padding is most of the cost of a CPU step on short-text tasks; this keeps the randomness of
    plain shuffling at the scale of a window while removing most of the padding.

    With several processes (`shard` = (rank, processes)) every process draws the same global batches
    of `batch_size` and yields its contiguous slice of each, batch_size / processes examples; a last
    batch that does not divide repeats its first examples (as torch's DistributedSampler does). The
    position it saves is the global one, the same on every process.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, window: int = 50,
                 shard: tuple[int, int] = (0, 1)):
        self.lengths, self.batch_size, self.window = list(lengths), batch_size, window
        self.rank, self.processes = shard
        self.generator = torch.Generator().manual_seed(seed)
        # Position for checkpoints: the generator state an epoch was drawn from and how many of
        # its batches were handed out; None between epochs.
        self.epoch_start: torch.Tensor | None = None
        self.served = 0
        self._skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        self.epoch_start, self.served = self.generator.get_state(), 0
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        skip, self._skip = self._skip, 0
        self.served = skip
        for index in torch.randperm(len(batches), generator=self.generator).tolist()[skip:]:
            self.served += 1
            yield batches[index] if self.processes == 1 else self._slice(batches[index])
        self.epoch_start = None

    def _slice(self, batch: list[int]) -> list[int]:
        """This process's part of a global batch."""
        padded = (batch * self.processes)[:len(batch) + -len(batch) % self.processes]
        size = len(padded) // self.processes
        return padded[self.rank * size:(self.rank + 1) * size]

    def end_epoch(self) -> None:
        """The consumer stops mid-epoch (a phase ended): the next iteration draws a new epoch."""
        self.epoch_start = None

    def state_dict(self) -> dict:
        if self.epoch_start is None:
            return {"generator": self.generator.get_state(), "epoch_start": None, "served": 0}
        return {"generator": self.generator.get_state(), "epoch_start": self.epoch_start, "served": self.served}

    def load_state_dict(self, state: dict) -> None:
        """The next iteration continues the saved epoch after its served batches, or starts a new one."""
        if state["epoch_start"] is None:
            self.generator.set_state(state["generator"])
            self.epoch_start, self._skip = None, 0
        else:
            self.generator.set_state(state["epoch_start"])
            self.epoch_start, self._skip = state["epoch_start"], int(state["served"])

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def make_loader(encoded: list[dict], batch_size: int, pad_id: int, shuffle: bool, seed: int = 0,
                shard: tuple[int, int] | None = None) -> DataLoader:
    """Training loaders shuffle by length buckets; evaluation loaders sort by length. Batches carry their
    examples' indices in the list `encoded` (`index`).

    A training loader's batches are `batch_size` examples over all processes, each process taking
    its slice (`shard` = (rank, processes); default: this run's, see `auxprune.distributed`).
    """
    collate_fn = lambda items: _with_index(items, pad_id)  # noqa: E731
    if shuffle:
        shard = shard or (distributed.rank(), distributed.processes())
        sampler = BucketBatchSampler([item_length(item) for item in encoded], batch_size, seed, shard=shard)
        # A generator of its own: otherwise every new epoch's iterator draws a worker seed from the
        # global RNG, and a run resumed mid-epoch would see a shifted dropout and gate noise stream.
        # Batches carry their examples' `index` too: the teacher's outputs computed once are read back by it.
        return DataLoader([dict(item, index=i) for i, item in enumerate(encoded)], batch_sampler=sampler,
                          collate_fn=collate_fn, generator=torch.Generator())
    order = sorted(range(len(encoded)), key=lambda i: item_length(encoded[i]))
    return DataLoader([dict(encoded[i], index=i) for i in order], batch_size=batch_size, collate_fn=collate_fn)


def _with_index(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    batch = collate(items, pad_id)
    if "index" in items[0]:
        batch["index"] = torch.tensor([item["index"] for item in items])
    return batch


@torch.no_grad()
def ordered_predictions(batches: Iterable[dict[str, torch.Tensor]],
                        logits_of: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> list[float | int]:
    """Predictions (score, or argmax class) in the dataset's order, from batches that carry each
    example's `index` (loaders from `make_loader` may batch by length). With several processes each
    predicts every N-th batch and all get every prediction."""
    results: dict[int, float | int] = {}
    for batch in distributed.shard(batches):
        logits = logits_of(batch)
        values = logits.squeeze(-1).tolist() if logits.shape[-1] == 1 else logits.argmax(-1).tolist()
        results.update(zip(batch["index"].tolist(), values))
    if distributed.active():
        results = {index: value for part in distributed.gather(results) for index, value in part.items()}
    return [results[i] for i in range(len(results))]
