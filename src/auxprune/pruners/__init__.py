"""Pruning methods behind one small interface, the `Pruner` protocol the training loop calls.

A pruner owns whatever it learns about the structure (gate parameters, multipliers, their
optimizers) and answers the loop's few questions:

| call | when | what |
|---|---|---|
| `gates()` | every training forward | gate values per family (see `auxprune.structure.FAMILIES`) |
| `regularization(step)` | every step | the term the loop adds to the loss (e.g. the sparsity constraint) |
| `optimizers()` | once, at setup | its own optimizers; the loop steps them with the weights' |
| `after_step()` | after each optimizer step | e.g. clamping its parameters |
| `expected_sparsity()` | for logs and the report | the sparsity the current gates imply |
| `log_values(step)` | for logs and the report | named numbers (target, multipliers) |
| `eval_gates()` | evaluation while pruning | noise-free gate values |
| `final_structure(target, tolerance)` | once, at the end | the fixed structure to cut (`FinalMasks`) |
| `mask_parameters()` / `load_mask_parameters()` | transfer | what "masks" means for this method, by name |
| `twin(copy)` | transfer with own gates | a second gate set of the same kind, under this one's constraint |
| `state_dict()` / `load_state_dict()` | checkpoints | everything needed to resume exactly |

A pruner is an `nn.Module` (its learnable parameters move with the model to the accelerator's
device). New methods are new modules here, registered in `PRUNERS` by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from auxprune.structure import Dims, FinalMasks


@runtime_checkable
class Pruner(Protocol):
    dims: Dims

    def gates(self) -> dict[str, Tensor]: ...

    def eval_gates(self) -> dict[str, Tensor]: ...

    def expected_sparsity(self) -> Tensor: ...

    def regularization(self, step: int) -> Tensor: ...

    def optimizers(self) -> list[torch.optim.Optimizer]: ...

    def after_step(self) -> None: ...

    def log_values(self, step: int) -> dict[str, float]: ...

    def final_structure(self, target: float | None, tolerance: float) -> FinalMasks: ...
    # A pruner may take `align` (prune.align > 1: FFN widths rounded to multiples, see structure.align_widths).

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> object: ...


# (dims, the config's prune section, the number of pruning steps) -> a fresh pruner
PrunerFactory = Callable[[Dims, object, int], Pruner]


def hard_concrete(dims: Dims, cfg, steps: int) -> Pruner:
    from auxprune.pruners.hard_concrete import HardConcretePruner

    return HardConcretePruner(dims, cfg.families, cfg.init_keep_prob, target=cfg.target_sparsity,
                              warmup_steps=int(cfg.sparsity_warmup * steps), gate_lr=cfg.gate_lr,
                              lambda1_lr=cfg.lambda1_lr, lambda2_lr=cfg.lambda2_lr,
                              skip_empty_sublayers=cfg.skip_empty_sublayers)


PRUNERS: dict[str, PrunerFactory] = {"hard_concrete": hard_concrete}
