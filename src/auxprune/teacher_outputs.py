"""The frozen teacher's outputs on the target training set, computed once and read back per batch.

While the student is pruned and fine-tuned, the teacher sees every training example once an epoch
and, frozen and in eval mode, answers the same each time: on CPU its forward pass is about a
quarter of a pruning step of MiniLM-L6. `TeacherOutputs.compute` runs it once over the training set
and keeps what distillation reads, without padding: the logits, the sentence embeddings (a
bi-encoder's, one per side) and the token states of the layers that layer distillation matches.
`for_batch` pads them back for a training batch, found by its examples' `index`.

The pass goes over the set in one fixed order and batching (by length, the training batch size),
so a resumed run and every process of a data-parallel run read the same numbers. They differ from a
forward pass on the training batch itself only by float rounding (another batch, another padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from auxprune import distributed
from auxprune.data.batching import collate, item_length
from auxprune.model.inputs import MODEL_INPUTS

MB = 2 ** 20


@dataclass
class CachedOutput:
    """What the model's output gives distillation: the fields it reads."""
    logits: Tensor
    embeddings: Tensor
    hidden_states: tuple[Tensor | None, ...] | None


def sides(item: dict) -> list[list[int]]:
    """The token ids of each sequence an example is encoded as (a bi-encoder's pair: two)."""
    return [item["input_ids"]] + ([item["input_ids_b"]] if "input_ids_b" in item else [])


def estimated_bytes(items: Sequence[dict], layers: Sequence[int], width: int, element_bytes: int = 4) -> int:
    """Memory the token states of `layers` take for `items` (logits and embeddings are small beside them)."""
    tokens = sum(len(ids) for item in items for ids in sides(item))
    return tokens * len(layers) * width * element_bytes


class TeacherOutputs:
    """Per example: its logits row, its embedding row(s), its matched layers' states per side."""

    def __init__(self, logits: list[Tensor], embeddings: list[Tensor], states: dict[int, list[list[Tensor]]],
                 num_layers: int):
        self.logits, self.embeddings, self.states, self.num_layers = logits, embeddings, states, num_layers

    @property
    def layers(self) -> list[int]:
        return sorted(self.states)

    @classmethod
    @torch.no_grad()
    def compute(cls, teacher, items: Sequence[dict], *, layers: Sequence[int], batch_size: int, pad_id: int,
                device: torch.device, autocast=None) -> "TeacherOutputs":
        """One pass of `teacher` over `items` (encoded training examples, in the training loader's order of
        indices), keeping the states of `layers` (1-based; empty: none). `autocast`: the context the
        training steps run the teacher under (mixed precision), so the numbers are the ones they would see."""
        n = len(items)
        logits: list[Tensor | None] = [None] * n
        embeddings: list[Tensor | None] = [None] * n
        states: dict[int, list[list[Tensor] | None]] = {layer: [None] * n for layer in layers}
        # Batched by length as the evaluation loader is, but not through a DataLoader: iterating one draws
        # from the global RNG, which would shift the gate noise of the steps that follow (resumes must match).
        order = sorted(range(n), key=lambda i: item_length(items[i]))
        chunks = [order[i:i + batch_size] for i in range(0, n, batch_size)]
        was_training = teacher.training
        teacher.eval()
        for chunk in tqdm(chunks, desc="teacher outputs", unit="batch", leave=False, dynamic_ncols=True,
                          disable=not distributed.is_main()):
            batch = collate([items[i] for i in chunk], pad_id)
            x = {k: batch[k].to(device) for k in MODEL_INPUTS}
            with (autocast or nullcontext)():
                out = teacher(**x, output_hidden_states=bool(layers))
            rows = len(chunk)
            for j, i in enumerate(chunk):
                own = [j, rows + j] if "input_ids_b" in items[i] else [j]  # a bi-encoder's batch: every A side, then every B
                lengths = [len(ids) for ids in sides(items[i])]
                logits[i] = out.logits[j].detach().clone()
                embeddings[i] = out.embeddings[own].detach().clone()
                for layer in layers:
                    states[layer][i] = [out.hidden_states[layer][row, :length].detach().clone()
                                        for row, length in zip(own, lengths)]
        teacher.train(was_training)
        return cls(logits, embeddings, states, teacher.config.num_hidden_layers)

    def for_batch(self, index: Tensor, attention_mask: Tensor, hidden: bool = True) -> CachedOutput:
        """The teacher's output on a training batch of examples `index` (a bi-encoder's: 2n rows, every A
        side then every B side); with `hidden`, the kept layers' states padded with zeros to the batch's
        length (layer distillation masks padding)."""
        chosen = index.tolist()
        logits = torch.stack([self.logits[i] for i in chosen])
        per_side = [self.embeddings[i] for i in chosen]
        pairs = per_side[0].shape[0] == 2
        embeddings = torch.cat([torch.stack([e[side] for e in per_side]) for side in range(2 if pairs else 1)])
        states = None
        if hidden and self.states:
            length = attention_mask.shape[1]
            states = [None] * (self.num_layers + 1)
            for layer, saved in self.states.items():
                rows = [saved[i][side] for side in range(2 if pairs else 1) for i in chosen]
                padded = rows[0].new_zeros((len(rows), length, rows[0].shape[-1]))
                for r, tokens in enumerate(rows):
                    padded[r, :tokens.shape[0]] = tokens
                states[layer] = padded
        device = attention_mask.device
        return CachedOutput(logits.to(device), embeddings.to(device),
                            tuple(h.to(device) if h is not None else None for h in states) if states else None)
