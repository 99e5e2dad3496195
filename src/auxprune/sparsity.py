"""Parameter accounting, exact and expected.

Sparsity is measured over the weights and biases of every encoder layer's attention block
(Q, K, V, output projection, its LayerNorm) and FFN block (two projections, its LayerNorm);
embeddings and task heads are counted apart. The formulas are the modules' own
(`Attention.param_count`, `FeedForward.param_count`, `Layer.param_count` in `model/encoder.py`);
the expected count calls the same formulas with the gates' keep probabilities, so the controller
steers exactly what is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from torch import Tensor, nn

from auxprune.model.encoder import Attention, FeedForward, Layer

if TYPE_CHECKING:
    from auxprune.structure import Dims


def encoder_params(layer_heads: list[int], layer_ffn: list[int], hidden: int, head_dim: int) -> int:
    """Exact count for a (possibly pruned) structure; a block of width 0 is absent."""
    return sum(Layer.param_count(heads, units, hidden, head_dim) for heads, units in zip(layer_heads, layer_ffn))


def dense_encoder_params(dims: Dims) -> int:
    return encoder_params([dims.num_heads] * dims.num_layers, [dims.ffn_size] * dims.num_layers,
                          dims.hidden_size, dims.head_dim)


def fewest_encoder_params(dims: Dims, families) -> int:
    """The smallest count the gated `families` can reach: what no gate covers stays whole."""
    heads = 0 if {"heads", "attn_block"} & set(families) else dims.num_heads
    units = 0 if {"ffn_units", "ffn_block"} & set(families) else dims.ffn_size
    hidden = 1 if "hidden" in families else dims.hidden_size
    return encoder_params([heads] * dims.num_layers, [units] * dims.num_layers, hidden, dims.head_dim)


def expected_encoder_params(probs: Mapping[str, Tensor], dims: Dims) -> Tensor:
    """E[kept parameters] from keep probabilities; exact for independent gates (products of expectations)."""
    hidden = probs["hidden"].sum()
    heads = probs["heads"].sum(-1)
    units = probs["ffn_units"].sum(-1)
    attention = probs["attn_block"] * Attention.param_count(heads, hidden, dims.head_dim)
    ffn = probs["ffn_block"] * FeedForward.param_count(units, hidden)
    return (attention + ffn).sum()


def expected_sparsity(probs: Mapping[str, Tensor], dims: Dims) -> Tensor:
    return 1.0 - expected_encoder_params(probs, dims) / dense_encoder_params(dims)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Real counts from a model's tensors: encoder blocks, embeddings, everything."""
    encoder = sum(p.numel() for layer in model.encoder.layers for p in layer.parameters())
    embeddings = sum(p.numel() for p in model.encoder.embeddings.parameters())
    total = sum(p.numel() for p in model.parameters())
    return {"encoder_kept": encoder, "embeddings": embeddings, "total": total}
