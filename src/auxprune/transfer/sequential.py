"""Sequential transfer: what stage 1 (on the auxiliary tasks) hands to stage 2 (the target job).

| stage1   | what    | teacher starts from | target gates start from | share=tied also pulls towards |
|----------|---------|---------------------|-------------------------|-------------------------------|
| finetune | weights | stage-1 weights     | fresh (init_keep_prob)  | stage-1 weights               |
| prune    | weights | stage-1 weights     | fresh                   | stage-1 weights               |
| prune    | masks   | pre-trained weights | stage-1 gate logits     | stage-1 gate logits           |
| prune    | both    | stage-1 weights     | stage-1 gate logits     | both                          |

The student starts as the fine-tuned teacher, so weights reach it through the teacher. A tie is
a squared-distance penalty (times `tie_strength`) towards the frozen stage-1 values, added to the
teacher's fine-tuning (weights) and to pruning (weights and gate logits); the cut model's final
fine-tuning has other shapes and runs untied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from auxprune.losses import squared_distance
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.pruners import Pruner


@dataclass
class StageOne:
    """The frozen outcome of stage 1 that stage 2 starts from or is tied to."""

    weights: dict[str, Tensor] | None  # encoder state, kept only when stage 2 is tied to it
    gates: dict[str, Tensor] | None  # the pruner's mask parameters by name, when masks transfer
    tie_weights: bool
    tie_gates: bool
    strength: float

    @classmethod
    def after(cls, model: AuxpruneForSequenceClassification, pruner: Pruner | None, what: str,
              share: str, strength: float) -> StageOne:
        tied = share == "tied"
        weights_move, masks_move = what in ("weights", "both"), what in ("masks", "both")
        return cls(
            weights={k: v.detach().clone() for k, v in model.encoder.state_dict().items()} if tied and weights_move else None,
            gates={k: v.detach().clone() for k, v in pruner.mask_parameters().items()}
            if masks_move and pruner is not None else None,
            tie_weights=tied and weights_move, tie_gates=tied and masks_move, strength=strength)

    @property
    def ties(self) -> bool:
        return self.tie_weights or self.tie_gates

    def penalty(self, model: AuxpruneForSequenceClassification, pruner: Pruner | None = None) -> Tensor:
        """strength x squared distance of the tied parts from their stage-1 values."""
        pairs = []
        if self.tie_weights:
            pairs += [(param, self.weights[name]) for name, param in model.encoder.named_parameters()]
        if self.tie_gates and pruner is not None:
            pairs += [(value, self.gates[name]) for name, value in pruner.mask_parameters().items()]
        if not pairs:
            return torch.zeros((), device=next(model.parameters()).device)
        return self.strength * squared_distance(pairs)
