"""When transfer acts: the auxiliary loss weight w(t) over the run's phases.

The run's training phases, in order: `teacher` (teacher fine-tuning), `warmup` (the pruning
steps while the sparsity target ramps up), `prune` (the rest of pruning), `finetune` (after
surgery). w(t) is zero in phases that are switched off; over the phases that are on, taken end to
end, t runs from 0 to 1 and w(t) follows the shape:

- `constant`: w
- `linear_decay`: w (1 - t)
- `cosine`: w (1 + cos(pi t)) / 2
- `window`: w for start <= t < end, else 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PHASES = ("teacher", "warmup", "prune", "finetune")
SHAPES = ("constant", "linear_decay", "cosine", "window")


@dataclass(frozen=True)
class Schedule:
    shape: str
    weight: float
    phases: tuple[str, ...]
    phase_steps: Mapping[str, int]
    window: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown schedule {self.shape!r}; choose from {SHAPES}")
        unknown = set(self.phases) - set(PHASES)
        if unknown:
            raise ValueError(f"unknown phases {sorted(unknown)}; choose from {PHASES}")

    @property
    def active_steps(self) -> int:
        return sum(self.phase_steps.get(p, 0) for p in PHASES if p in self.phases)

    def progress(self, phase: str, step: int) -> float:
        """t in [0, 1) for 1-based `step` of `phase`, counted over the active phases only."""
        before = 0
        for p in PHASES:
            if p == phase:
                break
            if p in self.phases:
                before += self.phase_steps.get(p, 0)
        return (before + step - 1) / max(1, self.active_steps)

    def __call__(self, phase: str, step: int) -> float:
        if phase not in self.phases:
            return 0.0
        t = self.progress(phase, step)
        if self.shape == "constant":
            return self.weight
        if self.shape == "linear_decay":
            return self.weight * (1.0 - t)
        if self.shape == "cosine":
            return self.weight * 0.5 * (1.0 + math.cos(math.pi * t))
        start, end = self.window
        return self.weight if start <= t < end else 0.0


def prune_phase(step: int, warmup_steps: int) -> str:
    """`warmup` while the sparsity target ramps up, then `prune`."""
    return "warmup" if step <= warmup_steps else "prune"


def phase_step(step: int, warmup_steps: int) -> int:
    """The 1-based step within its sub-phase of pruning."""
    return step if step <= warmup_steps else step - warmup_steps


def validate_phases(phases: Sequence[str]) -> list[str]:
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise ValueError(f"unknown phases {unknown}; choose from {list(PHASES)}")
    return list(phases)
