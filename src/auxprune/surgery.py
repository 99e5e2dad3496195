"""Cut a gated dense model into a physically smaller one: pure functions, no in-place edits.

Gate values are folded into the weights they scale, so the cut model computes exactly what the
gated model computed: head and FFN-unit values into the output projections' columns, block values
into the whole output projection, the hidden value into every LayerNorm's affine parameters.
A relative position bias (MPNet) is kept whole: it has one row per original head, not per hidden
dimension, and the cut config lists which original heads each layer kept (`layer_head_ids`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.structure import FinalMasks


def _head_rows(heads: Tensor, head_dim: int) -> Tensor:
    return (heads[:, None] * head_dim + torch.arange(head_dim)).flatten()


@torch.no_grad()
def cut(model: AuxpruneForSequenceClassification, masks: FinalMasks) -> AuxpruneForSequenceClassification:
    """A new, smaller model with the kept units of `model` (which must be dense)."""
    config = model.config
    if not config.is_dense:
        raise ValueError("cut() expects the dense model the gates were trained on")
    hidden = masks.keep["hidden"].nonzero().squeeze(-1)
    hidden_value = masks.values["hidden"][hidden]
    layer_heads, layer_ffn = masks.layer_heads, masks.layer_ffn
    structure = {"hidden_size": int(hidden.numel()), "layer_heads": layer_heads, "layer_ffn": layer_ffn,
                 "pooler_size": config.pooler_size}
    if config.relative_attention_num_buckets:
        structure["layer_head_ids"] = [(masks.keep["heads"][layer].nonzero().squeeze(-1).tolist() if heads else [])
                                       for layer, heads in enumerate(layer_heads)]
    new_config = AuxpruneConfig.from_dict({**config.to_dict(), **structure})
    source = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state: dict[str, Tensor] = {}

    def norm(prefix: str) -> None:
        state[f"{prefix}.weight"] = source[f"{prefix}.weight"][hidden] * hidden_value
        state[f"{prefix}.bias"] = source[f"{prefix}.bias"][hidden] * hidden_value

    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        if f"auxprune.embeddings.{name}.weight" in source:  # MPNet has no token types
            state[f"auxprune.embeddings.{name}.weight"] = source[f"auxprune.embeddings.{name}.weight"][:, hidden]
    if config.relative_attention_num_buckets:
        state["auxprune.embeddings.relative_attention_bias.weight"] = source["auxprune.embeddings.relative_attention_bias.weight"]
    norm("auxprune.embeddings.LayerNorm")

    for layer, (num_heads, num_units) in enumerate(zip(layer_heads, layer_ffn)):
        base = f"auxprune.layers.{layer}"
        if num_heads:
            heads = masks.keep["heads"][layer].nonzero().squeeze(-1)
            rows = _head_rows(heads, config.head_dim)
            for proj in ("query", "key", "value"):
                state[f"{base}.attention.{proj}.weight"] = source[f"{base}.attention.{proj}.weight"][rows][:, hidden]
                state[f"{base}.attention.{proj}.bias"] = source[f"{base}.attention.{proj}.bias"][rows]
            block = masks.values["attn_block"][layer]
            column_scale = masks.values["heads"][layer, heads].repeat_interleave(config.head_dim) * block
            state[f"{base}.attention.output.weight"] = source[f"{base}.attention.output.weight"][hidden][:, rows] * column_scale
            state[f"{base}.attention.output.bias"] = source[f"{base}.attention.output.bias"][hidden] * block
            norm(f"{base}.attention.LayerNorm")
        if num_units:
            units = masks.keep["ffn_units"][layer].nonzero().squeeze(-1)
            state[f"{base}.ffn.intermediate.weight"] = source[f"{base}.ffn.intermediate.weight"][units][:, hidden]
            state[f"{base}.ffn.intermediate.bias"] = source[f"{base}.ffn.intermediate.bias"][units]
            block = masks.values["ffn_block"][layer]
            column_scale = masks.values["ffn_units"][layer, units] * block
            state[f"{base}.ffn.output.weight"] = source[f"{base}.ffn.output.weight"][hidden][:, units] * column_scale
            state[f"{base}.ffn.output.bias"] = source[f"{base}.ffn.output.bias"][hidden] * block
            norm(f"{base}.ffn.LayerNorm")

    if config.pooling == "pooler":
        # The pooler reads the kept dimensions and keeps its full output width.
        state["auxprune.pooler.weight"] = source["auxprune.pooler.weight"][:, hidden]
        state["auxprune.pooler.bias"] = source["auxprune.pooler.bias"]
    state.update(_cut_head(model, source, hidden if config.pooling != "pooler" else None))

    small = AuxpruneForSequenceClassification(new_config)
    small.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True)
    return small.to(next(model.parameters()).device).train(model.training)



def _cut_head(model: AuxpruneForSequenceClassification, source: dict[str, Tensor], hidden: Tensor | None) -> dict[str, Tensor]:
    """The task head's weights reading the kept pooled dimensions (`hidden`; None: all of them).
    A bi-encoder's cosine head reads any width; its [u, v, |u - v|] head has three blocks to cut."""
    head = {k: v for k, v in source.items() if k.startswith("classifier.")}
    if hidden is None or (model.config.head == "bi" and "classifier.linear.weight" not in head):
        return head
    if model.config.head == "bi":
        width = model.classifier.width
        columns = torch.cat([hidden + k * width for k in range(3)])
        return {**head, "classifier.linear.weight": head["classifier.linear.weight"][:, columns]}
    return {**head, "classifier.weight": head["classifier.weight"][:, hidden]}
