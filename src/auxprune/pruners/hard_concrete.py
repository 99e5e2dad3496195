"""Hard-concrete gates (Louizos et al. 2018) with a Lagrangian sparsity controller, as in CoFi.

The first `Pruner`: a learnable log_alpha per structural unit for the selected families,
`attn_block` [L], `heads` [L, H], `ffn_block` [L], `ffn_units` [L, F], `hidden` [d]. A unit
survives only if every gate covering it is open, so a head needs its layer's `attn_block`,
itself, and the hidden dimensions it reads. The controller adds
lambda1 * (s - t) + lambda2 * (s - t)^2 to the loss, minimised by the model and gates, maximised by
the multipliers, with the target t ramped from 0 over a warm-up. At the end, per family the
expected number of units survives, ranked by log_alpha (`final_masks`).

Nothing outside this module knows about log_alpha.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from auxprune.sparsity import expected_sparsity
from auxprune.structure import FAMILIES, Dims, FinalMasks, select_structure, sublayers_present

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
LOG_ALPHA_RANGE = (-10.0, 10.0)


def keep_probability(log_alpha: Tensor) -> Tensor:
    """P(z > 0) in closed form: the expected keep rate, differentiable in log_alpha."""
    return torch.sigmoid(log_alpha - BETA * math.log(-GAMMA / ZETA))


def sample_gate(log_alpha: Tensor) -> Tensor:
    """One stretched, clamped hard-concrete sample per unit (reparameterised, so it has gradients)."""
    u = torch.rand_like(log_alpha).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / BETA)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def deterministic_gate(log_alpha: Tensor) -> Tensor:
    """The test-time gate value: the noise-free sample."""
    return (torch.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def log_alpha_for(keep_prob: float) -> float:
    """Initial log_alpha whose keep probability is `keep_prob`."""
    return math.log(keep_prob / (1 - keep_prob)) + BETA * math.log(-GAMMA / ZETA)


class HardConcreteGates(nn.Module):
    """Learnable log_alpha per unit for the selected families; other families stay open."""

    def __init__(self, dims: Dims, families: Iterable[str] = FAMILIES, init_keep_prob: float = 0.99):
        super().__init__()
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown gate families {sorted(unknown)}; known: {FAMILIES}")
        self.dims = dims
        self.families = tuple(f for f in FAMILIES if f in set(families))
        init = log_alpha_for(init_keep_prob)
        self.log_alpha = nn.ParameterDict({
            f: nn.Parameter(torch.full(dims.family_shape(f), init) + 0.01 * torch.randn(dims.family_shape(f)))
            for f in self.families
        })

    def sample(self) -> dict[str, Tensor]:
        return {f: sample_gate(la) for f, la in self.log_alpha.items()}

    def deterministic(self) -> dict[str, Tensor]:
        return {f: deterministic_gate(la) for f, la in self.log_alpha.items()}

    def keep_probabilities(self) -> dict[str, Tensor]:
        """P(z > 0) for every family; 1 for families that are not gated."""
        probs = {f: keep_probability(la) for f, la in self.log_alpha.items()}
        ref = next(iter(self.log_alpha.values()), torch.zeros(()))
        for f in FAMILIES:
            if f not in probs:
                probs[f] = torch.ones(self.dims.family_shape(f), device=ref.device)
        return probs

    @torch.no_grad()
    def clamp_(self) -> None:
        for la in self.log_alpha.values():
            la.clamp_(*LOG_ALPHA_RANGE)


def lagrangian_penalty(gap: Tensor, lambda1: Tensor, lambda2: Tensor) -> Tensor:
    """lambda1 * gap + lambda2 * gap^2: the one formula of the sparsity constraint."""
    return lambda1 * gap + lambda2 * gap * gap


class LagrangianController(nn.Module):
    """lambda1 * (s - t) + lambda2 * (s - t)^2, minimised by the model, maximised by the lambdas.

    The target t ramps linearly from 0 to the final target over `warmup_steps`, then holds.
    Optimise `parameters()` with an optimiser built with `maximize=True`.
    """

    def __init__(self, target: float, warmup_steps: int):
        super().__init__()
        self.target = target
        self.warmup_steps = max(1, warmup_steps)
        self.lambda1 = nn.Parameter(torch.zeros(()))
        self.lambda2 = nn.Parameter(torch.zeros(()))

    def target_at(self, step: int) -> float:
        return self.target * min(1.0, step / self.warmup_steps)

    def penalty(self, sparsity: Tensor, step: int) -> Tensor:
        return lagrangian_penalty(sparsity - self.target_at(step), self.lambda1, self.lambda2)


@torch.no_grad()
def final_masks(gates: HardConcreteGates, target_sparsity: float | None = None, tolerance: float = 0.005,
                align: int = 1) -> FinalMasks:
    """The fixed structure from trained gates (scores: log_alpha), calibrated to `target_sparsity` when given,
    FFN (and hidden) widths aligned to `align` (see `structure.align_widths`)."""
    scores, probs, values = {}, {}, {}
    for family, log_alpha in gates.log_alpha.items():
        la = log_alpha.detach().cpu().float()
        scores[family], probs[family], values[family] = la, keep_probability(la), deterministic_gate(la)
    return select_structure(gates.dims, scores, probs, values, target_sparsity, tolerance, align)


class HardConcretePruner(nn.Module):
    """Hard-concrete gates steered to the target sparsity by the Lagrangian controller.

    Gates learn at `gate_lr` (Adam); the multipliers ascend at their own rates: a slow lambda1
    (it integrates the gap and winds up while the gates are still saturated, so it overshoots)
    and a fast lambda2 (it acts in proportion to the gap).

    `skip_empty_sublayers`: a sublayer whose heads (or FFN units) all draw zero is absent from the forward,
    as it is from the cut model (`structure.sublayers_present`); False runs its LayerNorm still, as CoFi.
    """

    def __init__(self, dims: Dims, families: Iterable[str], init_keep_prob: float, *, target: float,
                 warmup_steps: int, gate_lr: float, lambda1_lr: float, lambda2_lr: float,
                 leader: HardConcretePruner | None = None, skip_empty_sublayers: bool = True):
        super().__init__()
        self.dims, self.init_keep_prob, self.gate_lr = dims, init_keep_prob, gate_lr
        self.skip_empty_sublayers = skip_empty_sublayers
        self.gate_set = HardConcreteGates(dims, families, init_keep_prob)
        # A twin has no multipliers of its own: it meets the leader's target at the leader's multipliers.
        object.__setattr__(self, "leader", leader)
        self.controller = LagrangianController(target, warmup_steps) if leader is None else None
        self._gate_optimizer = torch.optim.Adam(self.gate_set.parameters(), lr=gate_lr)
        self._lambda_optimizer = None if leader is not None else torch.optim.Adam(
            [{"params": [self.controller.lambda1], "lr": lambda1_lr},
             {"params": [self.controller.lambda2], "lr": lambda2_lr}], maximize=True)

    @property
    def families(self) -> tuple[str, ...]:
        return self.gate_set.families

    def gates(self) -> dict[str, Tensor]:
        return self._with_sublayers(self.gate_set.sample())

    def eval_gates(self) -> dict[str, Tensor]:
        return self._with_sublayers(self.gate_set.deterministic())

    def _with_sublayers(self, gates: dict[str, Tensor]) -> dict[str, Tensor]:
        return gates | sublayers_present(gates) if self.skip_empty_sublayers else gates

    def expected_sparsity(self) -> Tensor:
        return expected_sparsity(self.gate_set.keep_probabilities(), self.dims)

    def regularization(self, step: int) -> Tensor:
        if self.leader is None:
            return self.controller.penalty(self.expected_sparsity(), step)
        lead = self.leader.controller
        gap = self.expected_sparsity() - lead.target_at(step)
        return lagrangian_penalty(gap, lead.lambda1.detach(), lead.lambda2.detach())

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self._gate_optimizer] + ([self._lambda_optimizer] if self._lambda_optimizer is not None else [])

    def after_step(self) -> None:
        self.gate_set.clamp_()

    def log_values(self, step: int) -> dict[str, float]:
        c = self.controller if self.controller is not None else self.leader.controller
        return {"target": c.target_at(step), "lambda1": c.lambda1.item(), "lambda2": c.lambda2.item()}

    def final_structure(self, target: float | None, tolerance: float, align: int = 1) -> FinalMasks:
        return final_masks(self.gate_set, target, tolerance, align)

    def mask_parameters(self) -> dict[str, Tensor]:
        return dict(self.gate_set.log_alpha.items())

    @torch.no_grad()
    def load_mask_parameters(self, values: Mapping[str, Tensor]) -> None:
        for family, log_alpha in self.gate_set.log_alpha.items():
            log_alpha.copy_(values[family])

    def twin(self, copy: bool = False) -> HardConcretePruner:
        """Own gates of the same families (fresh, or a copy of these) under this pruner's constraint."""
        other = HardConcretePruner(self.dims, self.families, self.init_keep_prob, target=0.0, warmup_steps=1,
                                   gate_lr=self.gate_lr, lambda1_lr=0.0, lambda2_lr=0.0, leader=self,
                                   skip_empty_sublayers=self.skip_empty_sublayers)
        other.to(next(self.gate_set.parameters()).device)
        if copy:
            other.gate_set.load_state_dict(self.gate_set.state_dict())
        return other

    def state_dict(self, *args, **kwargs) -> dict:  # type: ignore[override]
        state = {"gates": self.gate_set.state_dict(), "gate_optimizer": self._gate_optimizer.state_dict()}
        if self.controller is not None:
            state["controller"] = self.controller.state_dict()
            state["lambda_optimizer"] = self._lambda_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict, strict: bool = True):  # type: ignore[override]
        self.gate_set.load_state_dict(state["gates"])
        self._gate_optimizer.load_state_dict(state["gate_optimizer"])
        if self.controller is not None:
            self.controller.load_state_dict(state["controller"])
            self._lambda_optimizer.load_state_dict(state["lambda_optimizer"])
