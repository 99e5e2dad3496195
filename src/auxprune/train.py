"""The training phases on the one loop (`loop.run`): which terms each switches on, what it trains.

| phase | batches | trains | terms |
|---|---|---|---|
| `fine_tune` (teacher, final) | target | model (+ auxiliary heads) | task; prediction distillation with a teacher; auxiliary loss and distillation on auxiliary inputs as scheduled; stage-1 tie |
| `fine_tune_aux` (stage 1) | none | encoder + auxiliary heads | auxiliary loss |
| `prune_aux` (stage 1, prune) | none | encoder + auxiliary heads + pruner | auxiliary loss, pruner's regularization |
| `prune` | target | model + layer map + auxiliary side + pruner | all of the above, layer distillation |

The loops do not own the pipeline's order; `pipeline.py` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from auxprune import distributed, loop
from auxprune.checkpoint import LoopState
from auxprune.config import RunConfig
from auxprune.data.batching import ordered_predictions
from auxprune.data.metrics import compute_metrics
from auxprune.data.tasks import TaskSpec
from auxprune.distill import LayerDistiller, teacher_layers
from auxprune.losses import Objective, inputs
from auxprune.loop import RunLog  # noqa: F401 - the run log, used by the pipeline through here
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.pruners import PRUNERS, Pruner, PrunerFactory
from auxprune.structure import Dims
from auxprune.teacher_outputs import TeacherOutputs
from auxprune.transfer.branch import AuxBranch
from auxprune.transfer.schedule import phase_step, prune_phase
from auxprune.transfer.sequential import StageOne


def epoch_batches(loader: DataLoader, config: RunConfig) -> int:
    """Batches that make one epoch of a target phase: the loader's, or enough for
    `train.min_epoch_examples` on a small training set (going round it several times)."""
    return max(len(loader), math.ceil(config.train.min_epoch_examples / config.train.batch_size))


def steps_for(epochs: float, loader: DataLoader, config: RunConfig) -> int:
    return max(1, math.ceil(epochs * epoch_batches(loader, config)))


def aux_steps_for(epochs: float, aux: AuxBranch) -> int:
    """Steps of a loop over the auxiliary tasks alone: `epochs` passes over all of them."""
    return max(1, math.ceil(epochs * sum(len(t.loader) for t in aux.tasks)))


def fine_tune(model: AuxpruneForSequenceClassification, loader: DataLoader, *, epochs: float, lr: float,
              config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
              teacher: AuxpruneForSequenceClassification | None = None, state: LoopState | None = None,
              aux: AuxBranch | None = None, tie: StageOne | None = None,
              teacher_outputs: TeacherOutputs | None = None) -> None:
    """Plain task training, with prediction distillation when a teacher is given.

    `teacher_outputs`: the teacher's outputs on `loader`'s examples, computed once (see
    `auxprune.teacher_outputs`). `state` checkpoints the loop and, when it carries a saved state,
    resumes it. With `aux`, the auxiliary loss (weighted by its schedule for `phase`) is added
    through the same encoder; with `tie`, the pull towards the stage-1 weights of a sequential transfer.
    """
    objective = Objective(model, config, schedule=lambda step: (phase, step), aux=aux, stage1=tie,
                          teacher=teacher if teacher is not None and config.distill.enabled else None,
                          teacher_outputs=teacher_outputs)
    weights = list(model.parameters()) + (list(aux.heads.parameters()) if aux is not None else [])
    loop.run(objective, weights=weights, lr=lr, steps=steps_for(epochs, loader, config), loader=loader, config=config,
             accelerator=accelerator, log=log, phase=phase, state=state)


def fine_tune_aux(model: AuxpruneForSequenceClassification, aux: AuxBranch, *, epochs: float, lr: float,
                  config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
                  state: LoopState | None = None) -> None:
    """Train the encoder on the auxiliary tasks alone (their heads; the target head is untouched)."""
    objective = Objective(model, config, schedule=lambda step: (phase, step), aux=aux)
    loop.run(objective, weights=list(model.encoder.parameters()) + list(aux.heads.parameters()), lr=lr,
             steps=aux_steps_for(epochs, aux), loader=None, config=config, accelerator=accelerator, log=log,
             phase=phase, state=state)


def prune_aux(model: AuxpruneForSequenceClassification, aux: AuxBranch, *, epochs: float, lr: float,
              config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
              state: LoopState | None = None, pruner: PrunerFactory | None = None) -> Pruner:
    """Sequential stage 1 by pruning: encoder and gates learn the auxiliary tasks alone under the
    run's sparsity constraint (no teacher); returns the pruner."""
    steps = aux_steps_for(epochs, aux)
    gates = (pruner or PRUNERS["hard_concrete"])(Dims.of(model.config), config.prune, steps)
    objective = Objective(model, config, schedule=lambda step: (phase, step), aux=aux, pruner=gates)
    trained = loop.run(objective, weights=list(model.encoder.parameters()) + list(aux.heads.parameters()), lr=lr,
                       steps=steps, loader=None, config=config, accelerator=accelerator, log=log, phase=phase,
                       state=state)
    return trained.pruner


@dataclass
class PruneResult:
    pruner: Pruner
    expected_sparsity: float
    stats: dict[str, float]  # the pruner's final numbers for the report (the Lagrange multipliers)
    layer_matches: list[int] = field(default_factory=list)


def prune(student: AuxpruneForSequenceClassification, teacher: AuxpruneForSequenceClassification | None,
          loader: DataLoader, *, config: RunConfig, accelerator: Accelerator, log: RunLog,
          state: LoopState | None = None, aux: AuxBranch | None = None, stage1: StageOne | None = None,
          pruner: PrunerFactory | None = None, teacher_outputs: TeacherOutputs | None = None) -> PruneResult:
    """Learn gates and weights together under the sparsity constraint, distilling from the teacher.

    `pruner` makes the pruning method (default: hard-concrete gates with the Lagrangian controller);
    `stage1` (sequential transfer) gives the gates' starting mask parameters and/or the tie to its values;
    `teacher_outputs` the teacher's outputs on `loader`'s examples, computed once.
    """
    cfg, distill = config.prune, config.distill
    steps = steps_for(cfg.epochs, loader, config)
    gates = (pruner or PRUNERS["hard_concrete"])(Dims.of(student.config), cfg, steps)
    if stage1 is not None and stage1.gates is not None:
        gates.load_mask_parameters(stage1.gates)
    teacher = teacher if teacher is not None and distill.enabled else None
    layer_map = None
    if teacher is not None and distill.layer_weight > 0:
        layer_map = LayerDistiller(student.config.hidden_size, teacher.config.hidden_size, teacher_layers(config, teacher))
    weights = list(student.parameters()) + (list(layer_map.parameters()) if layer_map else [])
    if aux is not None:
        aux.for_pruning(student, gates, config.transfer.what, config.transfer.share)
        weights += aux.trainable()[0]
    warmup_steps = int(cfg.sparsity_warmup * steps)
    objective = Objective(student, config, pruner=gates, layer_map=layer_map, aux=aux, teacher=teacher, stage1=stage1,
                          teacher_outputs=teacher_outputs,
                          schedule=lambda step: (prune_phase(step, warmup_steps), phase_step(step, warmup_steps)))
    trained = loop.run(objective, weights=weights, lr=cfg.lr, steps=steps, loader=loader, config=config,
                       accelerator=accelerator, log=log, phase="prune", state=state)
    with torch.no_grad():
        final_sparsity = float(trained.pruner.expected_sparsity())
    stats = {k: v for k, v in trained.pruner.log_values(steps).items() if k != "target"}
    return PruneResult(trained.pruner, final_sparsity, stats, trained.matches)


def dataset_predictions(model: AuxpruneForSequenceClassification, loader: DataLoader, accelerator: Accelerator,
                        desc: str = "eval") -> list[float | int]:
    """Predictions in the dataset's order (the loader may batch by length)."""
    model.eval()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=not distributed.is_main())
    return ordered_predictions(bar, lambda batch: model(**inputs(batch, accelerator.device)).logits)


def evaluate(model: AuxpruneForSequenceClassification, loader: DataLoader, labels: list, spec: TaskSpec,
             accelerator: Accelerator, desc: str = "eval") -> dict[str, float]:
    return compute_metrics(spec, dataset_predictions(model, loader, accelerator, desc), labels)
