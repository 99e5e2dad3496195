"""Hard-concrete gates (Louizos et al. 2018) over five structural families, as in CoFi.

Families and shapes for an encoder of L layers, H heads, F FFN units and hidden width d:
`attn_block` [L], `heads` [L, H], `ffn_block` [L], `ffn_units` [L, F], `hidden` [d].
A unit survives only if every gate covering it is open, so a head needs its layer's
`attn_block`, itself, and the hidden dimensions it reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

FAMILIES = ("attn_block", "heads", "ffn_block", "ffn_units", "hidden")
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
