"""Structure: the gate families, the dense shape they cover, and learned scores to a fixed structure.

Families and shapes for an encoder of L layers, H heads, F FFN units and hidden width d:
`attn_block` [L], `heads` [L, H], `ffn_block` [L], `ffn_units` [L, F], `hidden` [d]. A unit
survives only if every gate covering it is open.

`select_structure` turns any pruner's per-unit scores and keep probabilities into a fixed
structure: per family (per layer for heads and FFN units) the expected number of kept units
survives, ranked by score, as in CoFi. Nested gates are made consistent (a block with no heads is
gone, a gone block keeps no heads). Then the structure is calibrated: units are added or removed
in score order until the exact sparsity of the result is within tolerance of the target, because
the expected sparsity the controller steered can differ from the rounded structure by a few points.
With `align` N > 1, kept FFN units per layer (and kept hidden dimensions, when that family is
gated) are then rounded to multiples of N, still within the tolerance (`align_widths`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from auxprune.sparsity import dense_encoder_params, encoder_params

FAMILIES = ("attn_block", "heads", "ffn_block", "ffn_units", "hidden")


@dataclass(frozen=True)
class Dims:
    """The dense encoder's shape, which the gates cover."""

    num_layers: int
    num_heads: int
    head_dim: int
    ffn_size: int
    hidden_size: int

    def family_shape(self, family: str) -> tuple[int, ...]:
        return {
            "attn_block": (self.num_layers,),
            "heads": (self.num_layers, self.num_heads),
            "ffn_block": (self.num_layers,),
            "ffn_units": (self.num_layers, self.ffn_size),
            "hidden": (self.hidden_size,),
        }[family]

    @classmethod
    def of(cls, config) -> Dims:
        """The dense shape of a model config (also of a pruned model: its `original_*` fields)."""
        return cls(config.original_num_layers, config.original_num_heads, config.head_dim, config.original_ffn_size,
                   config.original_hidden_size)


@dataclass
class FinalMasks:
    """Boolean `keep` and float `values` for every family, shaped as `Dims.family_shape`."""

    keep: dict[str, Tensor]
    values: dict[str, Tensor]
    dims: Dims

    def as_gates(self) -> dict[str, Tensor]:
        """Gates for the masked forward that reproduce the cut model exactly."""
        gates = {f: self.values[f] * self.keep[f] for f in FAMILIES}
        gates.update({f"{f}_keep": self.keep[f] for f in ("attn_block", "ffn_block", "hidden")})
        return gates

    @property
    def layer_heads(self) -> list[int]:
        return [int(k) for k in (self.keep["heads"] & self.keep["attn_block"][:, None]).sum(-1)]

    @property
    def layer_ffn(self) -> list[int]:
        return [int(k) for k in (self.keep["ffn_units"] & self.keep["ffn_block"][:, None]).sum(-1)]

    @property
    def hidden_kept(self) -> int:
        return int(self.keep["hidden"].sum())

    def sparsity(self) -> float:
        kept = encoder_params(self.layer_heads, self.layer_ffn, self.hidden_kept, self.dims.head_dim)
        return 1.0 - kept / dense_encoder_params(self.dims)


def dense_masks(dims: Dims) -> FinalMasks:
    keep = {f: torch.ones(dims.family_shape(f), dtype=torch.bool) for f in FAMILIES}
    return FinalMasks(keep, {f: torch.ones(dims.family_shape(f)) for f in FAMILIES}, dims)


def _top_k(scores: Tensor, k: int) -> Tensor:
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[scores.topk(k).indices] = True
    return keep


def sublayers_present(gates: dict[str, Tensor]) -> dict[str, Tensor]:
    """`attn_block_keep` and `ffn_block_keep` for gate values as the pruner drew them: a sublayer exists when
    its block gate (if gated) is open and at least one of its units' gates (if gated) is, the rule
    `make_consistent` applies to the final structure. Without them, a layer whose heads all draw zero still
    runs its attention LayerNorm over the residual plus the output bias (CoFi's formulation), which the cut
    model, having no such sublayer, does not: pruning would fit a model that is not the one deployed.
    Returned on the CPU, so that the forward does not wait on the device once per layer to read them."""
    present = {}
    for block, units in (("attn_block", "heads"), ("ffn_block", "ffn_units")):
        if block not in gates and units not in gates:
            continue
        on = gates[units].detach().ne(0).any(-1) if units in gates else None
        if block in gates:
            opened = gates[block].detach().ne(0)
            on = opened if on is None else on & opened
        present[f"{block}_keep"] = on
    return {name: keep.cpu() for name, keep in present.items()}


def make_consistent(keep: dict[str, Tensor]) -> None:
    """A block with no unit left is off, and an off block keeps no unit (in place)."""
    keep["attn_block"] &= keep["heads"].any(-1)
    keep["heads"] &= keep["attn_block"][:, None]
    keep["ffn_block"] &= keep["ffn_units"].any(-1)
    keep["ffn_units"] &= keep["ffn_block"][:, None]


@torch.no_grad()
def select_structure(dims: Dims, scores: dict[str, Tensor], probs: dict[str, Tensor], values: dict[str, Tensor],
                     target_sparsity: float | None = None, tolerance: float = 0.005, align: int = 1) -> FinalMasks:
    """The fixed structure from per-unit `scores` (higher is kept first), keep probabilities `probs`
    (how many units survive) and gate `values` (folded into the weights), for the gated families
    given; calibrated to `target_sparsity` when given; FFN (and hidden) widths aligned to `align`."""
    masks = dense_masks(dims)
    for family, score in scores.items():
        masks.values[family] = values[family]
        p = probs[family]
        if family in ("attn_block", "ffn_block"):
            masks.keep[family] = p > 0.5
        elif family == "hidden":
            masks.keep[family] = _top_k(score, max(1, round(float(p.sum()))))
        else:
            masks.keep[family] = torch.stack([_top_k(row, round(float(q.sum()))) for row, q in zip(score, p)])
    make_consistent(masks.keep)
    if target_sparsity is not None:
        _calibrate(masks, scores, target_sparsity, tolerance)
    if align > 1:
        align_widths(masks, scores, align, target_sparsity, tolerance)
    return masks


def _calibrate(masks: FinalMasks, scores: dict[str, Tensor], target: float, tolerance: float) -> None:
    """Greedily remove the weakest kept (or restore the strongest dropped) heads and FFN units.

    Units the scores were least sure about move first.
    """
    fine = [f for f in ("heads", "ffn_units") if f in scores]
    if not fine:
        return
    best_state = ({f: k.clone() for f, k in masks.keep.items()}, abs(masks.sparsity() - target))
    for _ in range(sum(masks.keep[f].numel() for f in fine)):
        gap = masks.sparsity() - target
        if abs(gap) < best_state[1]:
            best_state = ({f: k.clone() for f, k in masks.keep.items()}, abs(gap))
        if abs(gap) <= tolerance:
            return
        too_dense = gap < 0
        best: tuple[float, str, tuple[int, int]] | None = None
        for family in fine:
            candidates = masks.keep[family] if too_dense else ~masks.keep[family]
            if not candidates.any():
                continue
            masked = scores[family].masked_fill(~candidates, float("inf") if too_dense else float("-inf"))
            flat = masked.argmin() if too_dense else masked.argmax()
            value = float(masked.flatten()[flat])
            if best is None or (value < best[0] if too_dense else value > best[0]):
                best = (value, family, divmod(int(flat), masked.shape[1]))
        if best is None:
            break
        _, family, (layer, unit) = best
        masks.keep[family][layer, unit] = not too_dense
        if not too_dense:  # restoring a unit of a removed block brings the block back
            masks.keep["attn_block" if family == "heads" else "ffn_block"][layer] = True
        make_consistent(masks.keep)
    # Steps too coarse to land inside the tolerance (tiny models): keep the closest state seen.
    if abs(masks.sparsity() - target) > best_state[1]:
        masks.keep = best_state[0]


def _keep_top(masks: FinalMasks, scores: dict[str, Tensor], family: str, layer: int | None, width: int) -> None:
    """Keep the `width` highest-scoring units of one row (`layer`), or of the hidden family (`layer` None)."""
    row = scores[family] if layer is None else scores[family][layer]
    keep = _top_k(row, width) if width > 0 else torch.zeros_like(row, dtype=torch.bool)
    if layer is None:
        masks.keep[family] = keep
    else:
        masks.keep[family][layer] = keep


def _aligned(width: int, align: int, full: int) -> int:
    """The multiple of `align` nearest to `width` (at least `align`, at most `full`); 0 stays 0."""
    if width == 0 or width == full:
        return width
    return min(full, max(align, align * round(width / align)))


def align_widths(masks: FinalMasks, scores: dict[str, Tensor], align: int, target: float | None,
                 tolerance: float) -> None:
    """Round kept FFN units per layer (and kept hidden dims, when gated) to multiples of `align`; heads stay as learned.

    Matrix kernels run fastest on widths that are multiples of 8 or 16. Each width moves to the
    nearest multiple (a removed block stays removed, a kept one keeps at least `align` units, a
    full-width layer stays full); within a layer, units are ranked by the pruner's score, so the
    least certain go first and the most certain dropped ones come back first. Then, while the
    sparsity is outside `tolerance` of `target`, whole steps of `align` FFN units are removed (too
    dense) or added back (too sparse) in the layer whose step has the lowest (highest) mean score;
    if no step lands inside the tolerance, the closest aligned structure is kept.
    """
    dims = masks.dims
    if "hidden" in scores and masks.hidden_kept < dims.hidden_size:
        _keep_top(masks, scores, "hidden", None, _aligned(masks.hidden_kept, align, dims.hidden_size))
    if "ffn_units" not in scores:
        return
    for layer, width in enumerate(masks.layer_ffn):
        _keep_top(masks, scores, "ffn_units", layer, _aligned(width, align, dims.ffn_size))
    make_consistent(masks.keep)
    if target is None:
        return
    best = ({f: k.clone() for f, k in masks.keep.items()}, abs(masks.sparsity() - target))
    for _ in range(dims.num_layers * (dims.ffn_size // align + 1)):
        gap = masks.sparsity() - target
        if abs(gap) <= tolerance:
            return
        too_dense = gap < 0
        choice: tuple[float, int, int] | None = None
        for layer, width in enumerate(masks.layer_ffn):
            new = (width - 1) // align * align if too_dense else min(dims.ffn_size, (width // align + 1) * align)
            if width == 0 or new < align or new == width:
                continue  # blocks are not removed or restored here, and a full layer cannot grow
            ranked = scores["ffn_units"][layer].sort(descending=True).values
            moved = ranked[new:width] if too_dense else ranked[width:new]
            value = float(moved.mean())
            if choice is None or (value < choice[0] if too_dense else value > choice[0]):
                choice = (value, layer, new)
        if choice is None:
            break
        _keep_top(masks, scores, "ffn_units", choice[1], choice[2])
        gap_after = abs(masks.sparsity() - target)
        if gap_after < best[1]:
            best = ({f: k.clone() for f, k in masks.keep.items()}, gap_after)
        elif (masks.sparsity() - target < 0) != too_dense:
            break  # stepped over the target and further from it: no aligned step lands closer
    masks.keep = best[0]
