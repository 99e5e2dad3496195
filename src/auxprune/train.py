"""Training loops: dense fine-tuning (teacher and final), pruning with gates, evaluation.

Every loop runs under a Hugging Face `Accelerator` and takes its device from it, so the same
code runs on a laptop CPU or a GPU. The loops do not own the pipeline's order; `pipeline.py` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from auxprune.checkpoint import LoopState, Value
from auxprune.config import RunConfig, TransferSection
from auxprune.data.batching import MODEL_INPUTS, ordered_predictions
from auxprune.data.metrics import compute_metrics
from auxprune.data.tasks import TaskSpec
from auxprune.distill import LayerDistiller, default_teacher_layers, prediction_loss
from auxprune.masks import Dims, HardConcreteGates
from auxprune.model.encoder import AuxpruneForSequenceClassification, task_loss
from auxprune.sparsity import LagrangianController, expected_sparsity
from auxprune.transfer.branch import AuxBranch
from auxprune.transfer.schedule import phase_step, prune_phase
from auxprune.transfer.sequential import StageOne


class RunLog:
    """Training curves as JSON lines, flushed as they come so a killed run keeps its log."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = path.open("a", encoding="utf-8") if path else None

    def write(self, **record) -> None:
        if self.handle:
            self.handle.write(json.dumps(record) + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle:
            self.handle.close()


def epoch_batches(loader: DataLoader, config: RunConfig) -> int:
    """Batches that make one epoch of a target phase: the loader's, or enough for
    `train.min_epoch_examples` on a small training set (going round it several times)."""
    return max(len(loader), math.ceil(config.train.min_epoch_examples / config.train.batch_size))


def steps_for(epochs: float, loader: DataLoader, config: RunConfig) -> int:
    return max(1, math.ceil(epochs * epoch_batches(loader, config)))


def batches(loader: DataLoader, steps: int) -> Iterator[dict[str, Tensor]]:
    """`steps` batches, going round the loader as many epochs as needed.

    A phase that ends mid-epoch abandons the rest of it: the next phase starts a new epoch.
    """
    done = 0
    while done < steps:
        for batch in loader:
            done += 1
            if done == steps and hasattr(loader.batch_sampler, "end_epoch"):
                loader.batch_sampler.end_epoch()  # before the last step, so its checkpoint knows
            yield batch
            if done == steps:
                return


def inputs(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: batch[k].to(device) for k in MODEL_INPUTS}


def progress(steps: int, desc: str, done: int = 0) -> tqdm:
    """A step bar starting at `done` (a resumed run); as a context manager it closes also on Ctrl-C, so the
    bar does not swallow the last message."""
    return tqdm(total=steps, initial=done, desc=desc, unit="step", dynamic_ncols=True, leave=True)


def fine_tune(model: AuxpruneForSequenceClassification, loader: DataLoader, *, epochs: float, lr: float,
              config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
              teacher: AuxpruneForSequenceClassification | None = None, state: LoopState | None = None,
              aux: AuxBranch | None = None, tie: StageOne | None = None) -> None:
    """Plain task training, with prediction distillation when a teacher is given.

    `state` checkpoints the loop and, when it carries a saved state, resumes it. With `aux`, the
    auxiliary loss (weighted by its schedule for `phase`) is added through the same encoder; with
    `tie`, the pull towards the stage-1 weights of a sequential transfer.
    """
    steps = steps_for(epochs, loader, config)
    params = list(model.parameters()) + (list(aux.heads.parameters()) if aux is not None else [])
    optimizer, schedule = _weights_optimizer(params, lr, steps, config)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = state or LoopState(phase)
    objects = {"model": model, "optimizer": optimizer, "schedule": schedule, **_sampler(loader),
               **({"aux": aux} if aux is not None else {})}
    done = state.start(objects)
    model.train()
    distill, transfer = config.distill, config.transfer
    with progress(steps, phase, done) as bar:
        for step, batch in enumerate(batches(loader, steps - done), start=done + 1):
            x, labels = inputs(batch, accelerator.device), batch["labels"].to(accelerator.device)
            logits = model(**x).logits
            loss = task_loss(logits, labels)
            parts: dict[str, Tensor] = {}
            if teacher is not None and distill.enabled:
                with torch.no_grad():
                    teacher_logits = teacher(**x).logits
                loss = distill.task_weight * loss + distill.prediction_weight * prediction_loss(logits, teacher_logits, distill.temperature)
                if _distills_on_aux(aux, transfer, phase):
                    parts["aux_distill"] = _distill_on_aux(aux, model, teacher, None, None, config, accelerator.device)
                    loss = loss + transfer.aux_distill * parts["aux_distill"]
            aux_weight = aux.weight(phase, step) if aux is not None else 0.0
            if aux_weight > 0:
                loss = loss + aux_weight * aux.loss(model, None, accelerator.device)
            if tie is not None and tie.tie_weights:
                loss = loss + tie.penalty(model)
            _update(loss, params, (optimizer,), schedule, accelerator, config.train.max_grad_norm)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % config.train.log_every == 0 or step == steps:
                log.write(phase=phase, step=step, loss=loss.item(), **{f"loss_{k}": v.item() for k, v in parts.items()},
                          lr=schedule.get_last_lr()[0])
            state.after_step(step, steps, objects)
    model.eval()


def fine_tune_aux(model: AuxpruneForSequenceClassification, aux: AuxBranch, *, epochs: float, lr: float,
                  config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
                  state: LoopState | None = None) -> None:
    """Train the encoder on the auxiliary tasks alone (their heads; the target head is untouched)."""
    steps = aux_steps_for(epochs, aux)
    params = list(model.auxprune.parameters()) + list(aux.heads.parameters())
    optimizer, schedule = _weights_optimizer(params, lr, steps, config)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = state or LoopState(phase)
    objects = {"model": model, "optimizer": optimizer, "schedule": schedule, "aux": aux}
    done = state.start(objects)
    model.train()
    with progress(steps, phase, done) as bar:
        for step in range(done + 1, steps + 1):
            loss = aux.loss(model, None, accelerator.device)
            _update(loss, params, (optimizer,), schedule, accelerator, config.train.max_grad_norm)
            bar.update()
            bar.set_postfix(aux_loss=f"{loss.item():.4f}")
            if step % config.train.log_every == 0 or step == steps:
                log.write(phase=phase, step=step, loss_aux=loss.item(), lr=schedule.get_last_lr()[0])
            state.after_step(step, steps, objects)
    model.eval()


def prune_aux(model: AuxpruneForSequenceClassification, aux: AuxBranch, *, epochs: float, lr: float,
              config: RunConfig, accelerator: Accelerator, log: RunLog, phase: str,
              state: LoopState | None = None) -> HardConcreteGates:
    """Sequential stage 1 by pruning: encoder and gates learn the auxiliary tasks alone under the
    run's sparsity constraint (no teacher); returns the gates."""
    cfg = config.prune
    steps = aux_steps_for(epochs, aux)
    dims = dims_of(model)
    gates, controller, lambda_optimizer = _sparsity_control(dims, cfg, steps)
    params = list(model.auxprune.parameters()) + list(aux.heads.parameters())
    optimizer, schedule = _weights_optimizer(params, lr, steps, config)
    gate_optimizer = torch.optim.Adam(gates.parameters(), lr=cfg.gate_lr)
    model, gates, controller, optimizer, gate_optimizer, lambda_optimizer = accelerator.prepare(
        model, gates, controller, optimizer, gate_optimizer, lambda_optimizer)
    state = state or LoopState(phase)
    objects = {"model": model, "gates": gates, "controller": controller, "optimizer": optimizer,
               "gate_optimizer": gate_optimizer, "lambda_optimizer": lambda_optimizer, "schedule": schedule, "aux": aux}
    done = state.start(objects)
    model.train()
    with progress(steps, phase, done) as bar:
        for step in range(done + 1, steps + 1):
            loss = aux.loss(model, gates.sample(), accelerator.device)
            sparsity = expected_sparsity(gates.keep_probabilities(), dims)
            _update(loss + controller.penalty(sparsity, step), params, (optimizer, gate_optimizer, lambda_optimizer),
                    schedule, accelerator, config.train.max_grad_norm)
            gates.clamp_()
            bar.update()
            bar.set_postfix(aux_loss=f"{loss.item():.4f}", sparsity=f"{sparsity.item():.3f}")
            if step % config.train.log_every == 0 or step == steps:
                log.write(phase=phase, step=step, loss_aux=loss.item(), expected_sparsity=sparsity.item(),
                          target=controller.target_at(step), lr=schedule.get_last_lr()[0])
            state.after_step(step, steps, objects)
    model.eval()
    return accelerator.unwrap_model(gates)


def aux_steps_for(epochs: float, aux: AuxBranch) -> int:
    """Steps of a loop over the auxiliary tasks alone: `epochs` passes over all of them."""
    return max(1, math.ceil(epochs * sum(len(t.loader) for t in aux.tasks)))


def _sparsity_control(dims: Dims, cfg, steps: int) -> tuple[HardConcreteGates, LagrangianController, torch.optim.Optimizer]:
    """Fresh gates, the Lagrangian controller of the sparsity target, and the multipliers' optimizer."""
    gates = HardConcreteGates(dims, cfg.families, cfg.init_keep_prob)
    controller = LagrangianController(cfg.target_sparsity, int(cfg.sparsity_warmup * steps))
    # A slow linear multiplier and a fast quadratic one: lambda1 integrates the gap and winds up
    # while the gates are still saturated, so it overshoots; lambda2 acts in proportion to the gap.
    lambda_optimizer = torch.optim.Adam([{"params": [controller.lambda1], "lr": cfg.lambda1_lr},
                                         {"params": [controller.lambda2], "lr": cfg.lambda_lr}], maximize=True)
    return gates, controller, lambda_optimizer


def _weights_optimizer(params: list, lr: float, steps: int, config: RunConfig):
    """AdamW with the run's weight decay and a linear schedule with warm-up over `steps`."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.train.weight_decay)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.train.warmup_ratio * steps), steps)


def _update(loss: Tensor, params: list, optimizers: tuple, schedule, accelerator: Accelerator, max_grad_norm: float) -> None:
    """One training step: backward, clip `params` (the weights), step and clear every optimizer, schedule."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(params, max_grad_norm)
    for optimizer in optimizers:
        optimizer.step()
        optimizer.zero_grad()
    schedule.step()


def _sampler(loader: DataLoader) -> dict:
    """The loader's batch sampler when it can save its position (training loaders can)."""
    sampler = loader.batch_sampler
    return {"sampler": sampler} if hasattr(sampler, "state_dict") else {}


@dataclass
class PruneResult:
    gates: HardConcreteGates
    expected_sparsity: float
    lambdas: tuple[float, float]
    layer_matches: list[int] = field(default_factory=list)


def dims_of(model: AuxpruneForSequenceClassification) -> Dims:
    c = model.config
    return Dims(c.num_hidden_layers, c.original_num_heads, c.head_dim, c.original_ffn_size, c.hidden_size)


def prune(student: AuxpruneForSequenceClassification, teacher: AuxpruneForSequenceClassification | None,
          loader: DataLoader, *, config: RunConfig, accelerator: Accelerator, log: RunLog,
          state: LoopState | None = None, aux: AuxBranch | None = None, stage1: StageOne | None = None) -> PruneResult:
    """Learn gates and weights together under the sparsity constraint, distilling from the teacher.

    `stage1` (sequential transfer) gives the gates' starting logits and/or the tie to its values.
    """
    cfg, distill = config.prune, config.distill
    steps = steps_for(cfg.epochs, loader, config)
    dims = dims_of(student)
    gates, controller, lambda_optimizer = _sparsity_control(dims, cfg, steps)
    if stage1 is not None and stage1.gates is not None:
        with torch.no_grad():
            for family, log_alpha in gates.log_alpha.items():
                log_alpha.copy_(stage1.gates[family])
    use_teacher = teacher is not None and distill.enabled
    layer_distiller = None
    if use_teacher and distill.layer_weight > 0:
        layers = distill.teacher_layers or default_teacher_layers(teacher.config.num_hidden_layers)
        layer_distiller = LayerDistiller(dims.hidden_size, teacher.config.hidden_size, layers)
    weights = list(student.parameters()) + (list(layer_distiller.parameters()) if layer_distiller else [])
    gate_params = list(gates.parameters())
    transfer = config.transfer
    if aux is not None:
        own = aux.for_pruning(student, gates, transfer.what, transfer.share, cfg.init_keep_prob)
        own_gates = set(aux.gates.parameters()) if aux.own_gates else set()
        weights += list(aux.heads.parameters()) + [p for p in own if p not in own_gates]
        gate_params += [p for p in own if p in own_gates]
    optimizer, schedule = _weights_optimizer(weights, cfg.lr, steps, config)
    gate_optimizer = torch.optim.Adam(gate_params, lr=cfg.gate_lr)
    warmup_steps = int(cfg.sparsity_warmup * steps)
    student, gates, controller, optimizer, gate_optimizer, lambda_optimizer = accelerator.prepare(
        student, gates, controller, optimizer, gate_optimizer, lambda_optimizer)
    if layer_distiller is not None:
        layer_distiller = accelerator.prepare(layer_distiller)
    state = state or LoopState("prune")
    objects = {"model": student, "gates": gates, "controller": controller, "optimizer": optimizer,
               "gate_optimizer": gate_optimizer, "lambda_optimizer": lambda_optimizer, "schedule": schedule,
               **({"layer_distiller": layer_distiller} if layer_distiller is not None else {}), **_sampler(loader),
               **({"aux": aux} if aux is not None else {})}
    done = state.start(objects)
    student.train()
    matches: list[int] = list((state.restore or {}).get("layer_matches", []))
    with progress(steps, "prune", done) as bar:
        for step, batch in enumerate(batches(loader, steps - done), start=done + 1):
            x, labels = inputs(batch, accelerator.device), batch["labels"].to(accelerator.device)
            z = gates.sample()
            out = student(**x, gates=z, output_hidden_states=layer_distiller is not None)
            parts = {"task": task_loss(out.logits, labels)}
            loss = parts["task"]
            if use_teacher:
                with torch.no_grad():
                    t_out = teacher(**x, output_hidden_states=layer_distiller is not None)
                parts["prediction"] = prediction_loss(out.logits, t_out.logits, distill.temperature)
                loss = distill.task_weight * loss + distill.prediction_weight * parts["prediction"]
                if layer_distiller is not None:
                    parts["layer"], matches = layer_distiller(out.hidden_states, t_out.hidden_states, x["attention_mask"])
                    loss = loss + distill.layer_weight * parts["layer"]
                if _distills_on_aux(aux, transfer, prune_phase(step, warmup_steps)):
                    parts["aux_distill"] = _distill_on_aux(aux, student, teacher, z, layer_distiller, config,
                                                           accelerator.device)
                    loss = loss + transfer.aux_distill * parts["aux_distill"]
            sparsity = expected_sparsity(gates.keep_probabilities(), dims)
            penalty = controller.penalty(sparsity, step)
            if aux is not None:
                loss, parts = _add_aux(aux, loss, parts, z, gates, student, controller, dims, step, warmup_steps,
                                       transfer.tie_strength, accelerator.device)
            if stage1 is not None and stage1.ties:
                parts["tie"] = stage1.penalty(student, gates)
                loss = loss + parts["tie"]
            _update(loss + penalty, weights, (optimizer, gate_optimizer, lambda_optimizer), schedule, accelerator,
                    config.train.max_grad_norm)
            gates.clamp_()
            if aux is not None and aux.own_gates:
                aux.gates.clamp_()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", sparsity=f"{sparsity.item():.3f}", target=f"{controller.target_at(step):.3f}")
            if step % config.train.log_every == 0 or step == steps:
                log.write(phase="prune", step=step, loss=loss.item(), **{f"loss_{k}": v.item() for k, v in parts.items()},
                          expected_sparsity=sparsity.item(), target=controller.target_at(step),
                          lambda1=controller.lambda1.item(), lambda2=controller.lambda2.item(),
                          lr=schedule.get_last_lr()[0], layer_matches=matches)
            state.after_step(step, steps, {**objects, "layer_matches": Value(matches)})
    student.eval()
    with torch.no_grad():
        final_sparsity = float(expected_sparsity(gates.keep_probabilities(), dims))
    return PruneResult(gates, final_sparsity, (controller.lambda1.item(), controller.lambda2.item()), matches)


def _distills_on_aux(aux: AuxBranch | None, transfer: TransferSection, phase: str) -> bool:
    """Whether this step of `phase` distils the teacher on an auxiliary batch."""
    return aux is not None and transfer.aux_distill > 0 and phase in transfer.aux_distill_phases


def _distill_on_aux(aux: AuxBranch, student: AuxpruneForSequenceClassification,
                    teacher: AuxpruneForSequenceClassification, z: dict[str, Tensor] | None,
                    layer_distiller: LayerDistiller | None, config: RunConfig, device: torch.device) -> Tensor:
    """The teacher's target predictions (and matched layers) on one auxiliary batch: with 1,000 target
    examples, the auxiliary inputs give distillation many more points to match the teacher at.
    Without gates (`z` None) this distils an already pruned model, as in final fine-tuning."""
    distill, hidden = config.distill, layer_distiller is not None
    x = aux.next_inputs(device)
    out = student(**x, gates=z, output_hidden_states=hidden)
    with torch.no_grad():
        t_out = teacher(**x, output_hidden_states=hidden)
    loss = distill.prediction_weight * prediction_loss(out.logits, t_out.logits, distill.temperature)
    if hidden:
        loss = loss + distill.layer_weight * layer_distiller(out.hidden_states, t_out.hidden_states, x["attention_mask"])[0]
    return loss


def _add_aux(aux: AuxBranch, loss: Tensor, parts: dict, z: dict, gates: HardConcreteGates,
             student: AuxpruneForSequenceClassification, controller: LagrangianController, dims: Dims, step: int,
             warmup_steps: int, tie_strength: float, device: torch.device) -> tuple[Tensor, dict]:
    """The auxiliary terms of one pruning step: its weighted loss, its own gates' sparsity, the ties."""
    weight = aux.weight(prune_phase(step, warmup_steps), phase_step(step, warmup_steps))
    if weight > 0:
        aux_z = z if aux.gates is gates else aux.gates.sample()
        parts["aux"] = aux.loss(aux.encoder, aux_z, device)
        loss = loss + weight * parts["aux"]
    if aux.own_gates:
        # Its own gates meet the same sparsity target, at the target's current multipliers.
        gap = expected_sparsity(aux.gates.keep_probabilities(), dims) - controller.target_at(step)
        loss = loss + controller.lambda1.detach() * gap + controller.lambda2.detach() * gap * gap
    if aux.ties:
        parts["tie"] = aux.tie_penalty(student, gates)
        loss = loss + tie_strength * parts["tie"]
    return loss, parts


def predict(model: AuxpruneForSequenceClassification, loader: DataLoader, accelerator: Accelerator,
            desc: str = "eval") -> list[float | int]:
    """Predictions in the dataset's order (the loader may batch by length)."""
    model.eval()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    return ordered_predictions(bar, lambda batch: model(**inputs(batch, accelerator.device)).logits)


def evaluate(model: AuxpruneForSequenceClassification, loader: DataLoader, labels: list, spec: TaskSpec,
             accelerator: Accelerator, desc: str = "eval") -> dict[str, float]:
    return compute_metrics(spec, predict(model, loader, accelerator, desc), labels)
