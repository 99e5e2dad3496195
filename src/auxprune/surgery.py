"""Cut a gated dense model into a physically smaller one: pure functions, no in-place edits.

Gate values are folded into the weights they scale, so the cut model computes exactly what the
gated model computed: head and FFN-unit values into the output projections' columns, block values
into the whole output projection, the hidden value into every LayerNorm's affine parameters.
How each module is sliced is the module's own `sliced_state` (`model/encoder.py`); `cut` decides
the new config and hands every module its kept indices and gate values.
A relative position bias (MPNet) is kept whole: it has one row per original head, not per hidden
dimension, and the cut config lists which original heads each layer kept (`layer_head_ids`).
"""

from __future__ import annotations

import torch
from torch import nn

from auxprune.model.configuration import AuxpruneConfig
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.structure import FinalMasks


@torch.no_grad()
def cut(model: AuxpruneForSequenceClassification, masks: FinalMasks) -> AuxpruneForSequenceClassification:
    """A new, smaller model with the kept units of `model` (which must be dense)."""
    config = model.config
    if not config.is_dense:
        raise ValueError("cut() expects the dense model the gates were trained on")
    keep, values = masks.keep, masks.values
    hidden = keep["hidden"].nonzero().squeeze(-1)
    hidden_scale = values["hidden"][hidden]
    layer_heads, layer_ffn = masks.layer_heads, masks.layer_ffn
    structure = {"hidden_size": int(hidden.numel()), "layer_heads": layer_heads, "layer_ffn": layer_ffn,
                 "pooler_size": config.pooler_size}
    if config.relative_attention_num_buckets:
        structure["layer_head_ids"] = [(keep["heads"][layer].nonzero().squeeze(-1).tolist() if heads else [])
                                       for layer, heads in enumerate(layer_heads)]
    small = AuxpruneForSequenceClassification(AuxpruneConfig.from_dict({**config.to_dict(), **structure}))

    loaded: set[int] = set()

    def load(target: nn.Module, state: dict) -> None:
        target.load_state_dict(state, strict=True)
        loaded.update(id(p) for p in target.parameters())

    dense, pruned = model.encoder, small.encoder
    load(pruned.embeddings, dense.embeddings.sliced_state(hidden, hidden_scale))
    for layer, (source, target) in enumerate(zip(dense.layers, pruned.layers)):
        if target.attention is not None:
            heads = keep["heads"][layer].nonzero().squeeze(-1)
            load(target.attention, source.attention.sliced_state(heads, hidden, values["heads"][layer, heads],
                                                                 values["attn_block"][layer], hidden_scale))
        if target.ffn is not None:
            units = keep["ffn_units"][layer].nonzero().squeeze(-1)
            load(target.ffn, source.ffn.sliced_state(units, hidden, values["ffn_units"][layer, units],
                                                     values["ffn_block"][layer], hidden_scale))
    if pruned.pooler is not None:  # reads the kept dimensions, keeps its full output width
        load(pruned.pooler, dense.pooler.sliced_state(hidden))
    load(small.classifier, model.classifier.sliced_state(hidden if pruned.pooler is None else None))
    missing = [name for name, p in small.named_parameters() if id(p) not in loaded]
    if missing:  # a module nobody sliced would keep its random initialization
        raise RuntimeError(f"cut() did not set {', '.join(missing)}")
    return small.to(next(model.parameters()).device).train(model.training)


@torch.no_grad()
def cut_agreement(model: AuxpruneForSequenceClassification, gates: dict[str, torch.Tensor],
                  small: AuxpruneForSequenceClassification, masks: FinalMasks,
                  batch: dict[str, torch.Tensor]) -> dict[str, float | int]:
    """How far the cut model is from the gated model as pruning left it (`gates`: the pruner's test-time gates,
    before the structure is fixed), on one batch in eval mode: the cosine of their pooled embeddings (per
    example, mean and smallest) and the largest difference of their outputs. `cut` is exact for the final
    masks (tests/test_surgery.py); this measures what the final masks change: calibration to the target (units
    added or dropped to land on it) and, with `prune.skip_empty_sublayers=false`, a sublayer left with no heads or
    units, which that pruning still runs (its LayerNorm, over the residual and the output bias) and the cut
    removes. `masks`: the final masks `small` was cut with."""
    modes = model.training, small.training
    model.eval()
    small.eval()
    try:
        gated, got = model(**batch, gates=gates), small(**batch)
    finally:
        model.train(modes[0])
        small.train(modes[1])
    expected, embeddings = gated.embeddings.float(), got.embeddings.float()
    if embeddings.shape[-1] != expected.shape[-1]:  # pooled hidden states: the cut ones in their places, zeros around
        kept = masks.keep["hidden"].nonzero().squeeze(-1).to(embeddings.device)
        embeddings = embeddings.new_zeros(expected.shape).index_copy(-1, kept, embeddings)
    cosine = nn.functional.cosine_similarity(expected, embeddings, dim=-1)
    return {"examples": int(batch["input_ids"].shape[0]), "embedding_cosine_mean": round(float(cosine.mean()), 4),
            "embedding_cosine_min": round(float(cosine.min()), 4),
            "output_max_abs_diff": round(float((gated.logits.float() - got.logits.float()).abs().max()), 4)}
