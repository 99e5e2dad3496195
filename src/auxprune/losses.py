"""The loss terms a phase switches on, and the one module that computes them.

`Objective` holds everything a phase trains: the model, the pruner (its gates and multipliers),
the layer map of layer distillation and the auxiliary heads (with the auxiliary side's own encoder
copy and gates when it has them). Its forward takes one target batch (None in phases that train on
the auxiliary tasks alone) and returns the losses by name: `loss` (what the loop minimises, without
the pruner's term), `regularization` (the pruner's term) and each part. A data-parallel wrapper
around it therefore sees every trainable parameter.

Terms, in the order they are computed (the order of random draws; kept for exact reproduction):
task loss (the model's own: a bi-encoder's reads cosines); prediction distillation, a bi-encoder's
embedding distillation, and layer distillation (with a teacher); distillation on one
auxiliary batch (`transfer.aux_distill_weight` in `transfer.aux_distill_phases`); the weighted auxiliary
loss (w(t) from the transfer schedule); the auxiliary gates' own constraint and the tie between
tied copies (pruning); the tie to the sequential stage-1 values; the pruner's regularization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from auxprune.distill import LayerDistiller, embedding_loss, prediction_loss
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.model.inputs import MODEL_INPUTS
from auxprune.pruners import Pruner
from auxprune.teacher_outputs import TeacherOutputs


def squared_distance(pairs: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
    """Sum of squared differences over pairs of tensors: the one formula of every tie."""
    total = None
    for a, b in pairs:
        d = (a - b.to(a.device)).pow(2).sum()
        total = d if total is None else total + d
    return total if total is not None else torch.zeros(())


def inputs(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: batch[k].to(device) for k in MODEL_INPUTS}


def distills_on_aux(aux, transfer, phase: str) -> bool:
    """Whether a step of `phase` distils the teacher on an auxiliary batch."""
    return aux is not None and transfer.aux_distill_weight > 0 and phase in transfer.aux_distill_phases


class Objective(nn.Module):
    """The model and everything trained with it; forward returns the losses of one step.

    `schedule(step)` names the step for the transfer schedule: (phase, step within it), e.g.
    ("warmup", 3) for pruning's third step. `teacher` (frozen, not a submodule) switches on
    distillation, `teacher_outputs` (its outputs on the target training set, computed once) stands in
    for its forward pass on target batches (unused without a teacher); `stage1` the tie to the stage-1
    values of a sequential transfer.
    """

    def __init__(self, model: AuxpruneForSequenceClassification, config, *, schedule: Callable[[int], tuple[str, int]],
                 pruner: Pruner | None = None, layer_map: LayerDistiller | None = None, aux=None,
                 teacher: AuxpruneForSequenceClassification | None = None, stage1=None,
                 teacher_outputs: TeacherOutputs | None = None):
        super().__init__()
        self.model, self.pruner, self.layer_map = model, pruner, layer_map
        self.aux_modules = nn.ModuleList(aux.trainable()[1] if aux is not None and pruner is not None
                                         else [aux.heads] if aux is not None else [])
        object.__setattr__(self, "aux", aux)
        object.__setattr__(self, "teacher", teacher)
        self.teacher_outputs = teacher_outputs
        self.run_config, self.schedule, self.stage1 = config, schedule, stage1
        self.matches: list[int] = []

    def pruners(self) -> list[Pruner]:
        """The pruner and, when the auxiliary side has its own gates, their twin."""
        found = [self.pruner] if self.pruner is not None else []
        if found and self.aux is not None and self.aux.own_gates:
            found.append(self.aux.gates)
        return found

    def forward(self, batch: dict[str, Tensor] | None, step: int) -> dict[str, Tensor]:
        distill, transfer, aux, pruner = self.run_config.distill, self.run_config.transfer, self.aux, self.pruner
        device = next(self.model.parameters()).device
        phase, phase_step = self.schedule(step)
        parts: dict[str, Tensor] = {}
        z = pruner.gates() if pruner is not None else None
        if batch is None:  # the auxiliary tasks alone
            parts["aux"] = loss = aux.loss(self.model, z, device)
        else:
            x, labels = inputs(batch, device), batch["labels"].to(device)
            hidden = self.layer_map is not None
            out = self.model(**x, gates=z, output_hidden_states=hidden)
            parts["task"] = loss = self.model.task_loss(out.logits, labels)
            if self.teacher is not None:
                t_out = self._teacher_on(batch, x, hidden)
                parts["prediction"] = prediction_loss(out.logits, t_out.logits, distill.temperature)
                loss = distill.task_weight * loss + distill.prediction_weight * parts["prediction"]
                if self.model.is_bi_encoder and distill.embedding_weight > 0:
                    embedding = embedding_loss(out.embeddings, t_out.embeddings, self.layer_map)
                    if embedding is not None:
                        parts["embedding"] = embedding
                        loss = loss + distill.embedding_weight * embedding
                if hidden:
                    parts["layer"], self.matches = self.layer_map(out.hidden_states, t_out.hidden_states, x["attention_mask"])
                    loss = loss + distill.layer_weight * parts["layer"]
                if distills_on_aux(aux, transfer, phase):
                    parts["aux_distill"] = self._distill_on_aux(z, device)
                    loss = loss + transfer.aux_distill_weight * parts["aux_distill"]
            if aux is not None:
                loss = self._aux_terms(loss, parts, z, step, phase, phase_step, device)
        if self.stage1 is not None and (self.stage1.tie_weights or pruner is not None and self.stage1.tie_gates):
            parts["tie"] = self.stage1.penalty(self.model, pruner)
            loss = loss + parts["tie"]
        parts["loss"] = loss
        if pruner is not None:
            parts["regularization"] = pruner.regularization(step)
        return parts

    def _teacher_on(self, batch: dict[str, Tensor], x: dict[str, Tensor], hidden: bool):
        """The teacher's output on a target batch: read from its outputs computed once when there are
        some (and they hold the layers asked for), else a forward pass."""
        cached = self.teacher_outputs
        if cached is not None and "index" in batch and (not hidden or set(self.layer_map.teacher_layers) <= set(cached.layers)):
            return cached.for_batch(batch["index"], x["attention_mask"], hidden)
        with torch.no_grad():
            return self.teacher(**x, output_hidden_states=hidden)

    def _aux_terms(self, loss: Tensor, parts: dict, z, step: int, phase: str, phase_step: int, device) -> Tensor:
        """The weighted auxiliary loss and, while pruning, its own gates' constraint and the ties."""
        aux, pruner, transfer = self.aux, self.pruner, self.run_config.transfer
        weight = aux.weight(phase, phase_step)
        if weight > 0:
            if pruner is None:  # no gates: through the model being trained
                parts["aux"] = aux.loss(self.model, None, device)
            else:
                aux_z = z if aux.gates is pruner else aux.gates.gates()
                parts["aux"] = aux.loss(aux.encoder, aux_z, device)
            loss = loss + weight * parts["aux"]
        if pruner is not None and aux.own_gates:  # its own gates meet the same target, at the target's multipliers
            loss = loss + aux.gates.regularization(step)
        if pruner is not None and aux.ties:
            parts["tie"] = aux.tie_penalty(self.model, pruner)
            loss = loss + transfer.tie_strength * parts["tie"]
        return loss

    def _distill_on_aux(self, z: dict[str, Tensor] | None, device: torch.device) -> Tensor:
        """The teacher's target predictions (and matched layers) on one auxiliary batch: with 1,000 target
        examples, the auxiliary inputs give distillation many more points to match the teacher at.
        Without gates (`z` None) this distils an already pruned model, as in final fine-tuning."""
        distill, hidden = self.run_config.distill, self.layer_map is not None
        x = self.aux.next_inputs(device)
        if self.model.is_bi_encoder:
            return self._distill_embeddings(x, z, distill, hidden)
        out = self.model(**x, gates=z, output_hidden_states=hidden)
        with torch.no_grad():
            t_out = self.teacher(**x, output_hidden_states=hidden)
        loss = distill.prediction_weight * prediction_loss(out.logits, t_out.logits, distill.temperature)
        if hidden:
            loss = loss + distill.layer_weight * self.layer_map(out.hidden_states, t_out.hidden_states, x["attention_mask"])[0]
        return loss

    def _distill_embeddings(self, x: dict[str, Tensor], z, distill, hidden: bool) -> Tensor:
        """A bi-encoder on auxiliary inputs: its sentence embeddings (any sentences) and, on pairs, its
        cosine predictions towards the teacher's; matched layers as on target batches."""
        pairs = bool(x.pop("pairs", False))
        pooled, states = self.model.encoder.encode(**x, gates=z)
        with torch.no_grad():
            t_pooled, t_states = self.teacher.encoder.encode(**x)
            t_logits = self.teacher.classifier(t_pooled) if pairs else None
        loss = pooled.new_zeros(())
        embedding = embedding_loss(pooled, t_pooled, self.layer_map)
        if embedding is not None:
            loss = loss + distill.embedding_weight * embedding
        if pairs:
            loss = loss + distill.prediction_weight * prediction_loss(
                self.model.classifier(pooled), t_logits, distill.temperature)
        if hidden:
            loss = loss + distill.layer_weight * self.layer_map(states, t_states, x["attention_mask"])[0]
        return loss
