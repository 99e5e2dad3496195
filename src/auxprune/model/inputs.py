"""What the model takes: the input names, token lists padded into a batch, random batches, the
truncation length.

Training batches (`data/batching.py`), prediction (`predict.py`), ONNX export and the speed
benchmark all build their inputs here. It needs only torch, so loading a model and predicting with
it import no training code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what the model takes, in this order


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int,
              segments: Sequence[Sequence[int] | None] | None = None) -> dict[str, Tensor]:
    """Token id lists as one batch padded to its longest row: `MODEL_INPUTS` as int64 tensors. Token
    types come from `segments` (a row's list, or None), else 0."""
    length = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
    token_type_ids = torch.zeros((len(ids), length), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, :len(tokens)] = torch.tensor(tokens)
        attention_mask[row, :len(tokens)] = 1
        types = segments[row] if segments is not None else None
        if types is not None:
            token_type_ids[row, :len(types)] = torch.tensor(types)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def random_inputs(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0, *, pad_id: int | None = None,
                  two_segments: bool = False) -> dict[str, Tensor]:
    """Random token ids shaped like tokenizer output (`MODEL_INPUTS`), the same for the same seed.

    With `pad_id`, the last of several rows is padding after its first seq_len // 2 + 1 tokens; with
    `two_segments`, the second half of every row is segment 1.
    """
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator)
    mask = torch.ones_like(ids)
    if pad_id is not None and batch_size > 1:
        mask[-1, seq_len // 2 + 1:] = 0
        ids[-1, seq_len // 2 + 1:] = pad_id
    types = torch.zeros_like(ids)
    if two_segments:
        types[:, seq_len // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def truncation_length(config) -> int:
    """Where texts are cut: the training length, never more than the position embeddings hold."""
    return min(config.max_seq_len, config.max_positions)
