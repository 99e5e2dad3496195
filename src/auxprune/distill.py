"""Distillation from a fine-tuned dense teacher: predictions, and hidden states layer by layer.

Layer matching follows CoFi without its hard-coded indices: a few teacher layers (evenly spaced,
ending at the last) are each matched to the student layer whose mapped hidden states are closest,
in order, so matches move along with the layers that pruning keeps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from auxprune import distributed


def prediction_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL at temperature T (scaled by T^2) for classes; MSE for a regression output."""
    if student_logits.shape[-1] == 1:
        return F.mse_loss(student_logits, teacher_logits)
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, -1), F.log_softmax(teacher_logits / t, -1),
                    log_target=True, reduction="batchmean") * t * t


def embedding_loss(student: Tensor, teacher: Tensor, layer_map: "LayerDistiller | None") -> Tensor | None:
    """A bi-encoder's sentence embeddings towards the teacher's: 1 - cosine, averaged (the direction is
    what cosine similarity reads). Through the layer map when there is one; None when the widths
    differ and there is no map (a model cut in width, fine-tuned without layer distillation)."""
    if layer_map is not None:
        student = layer_map.map(student)
    elif student.shape[-1] != teacher.shape[-1]:
        return None
    return 1.0 - F.cosine_similarity(student, teacher, dim=-1).mean()


def teacher_layers(config, teacher) -> list[int]:
    """The teacher layers layer distillation matches (1-based; none when its weight is 0)."""
    if not config.distill.enabled or config.distill.layer_weight <= 0:
        return []
    return config.distill.teacher_layers or default_teacher_layers(teacher.config.num_hidden_layers)


def default_teacher_layers(num_layers: int, count: int = 4) -> list[int]:
    """Evenly spaced 1-based layers ending at the last: 12 layers -> [3, 6, 9, 12], 6 -> [2, 3, 5, 6]."""
    count = min(count, num_layers)
    return sorted({math.ceil(num_layers * (i + 1) / count) for i in range(count)})


class LayerDistiller(nn.Module):
    """A learned linear map from student to teacher hidden states, and the matched-layer MSE."""

    def __init__(self, student_width: int, teacher_width: int, teacher_layers: list[int]):
        super().__init__()
        self.teacher_layers = teacher_layers
        self.map = nn.Linear(student_width, teacher_width)
        with torch.no_grad():
            # Student and teacher start as the same network: begin from the identity.
            self.map.weight.copy_(torch.eye(teacher_width, student_width))
            self.map.bias.zero_()

    def forward(self, student_states: tuple[Tensor, ...], teacher_states: tuple[Tensor, ...],
                attention_mask: Tensor) -> tuple[Tensor, list[int]]:
        """Sum of matched-layer losses and the matched student layers (1-based).

        With several processes, each holding a slice of the batch, the loss is over all of their
        tokens (its share, scaled so that the averaged gradients are those of the whole batch) and
        every process picks the same matches."""
        valid = attention_mask[..., None].to(student_states[0].dtype)
        count = valid.sum() * teacher_states[self.teacher_layers[-1]].shape[-1]  # the matched layers are all a cache keeps
        if distributed.active():
            count = distributed.total(count) / distributed.processes()
        mapped = [self.map(s) for s in student_states[1:]]
        total, matches, start = student_states[0].new_zeros(()), [], 0
        for layer in self.teacher_layers:
            target = teacher_states[layer]
            losses = torch.stack([(((m - target) ** 2) * valid).sum() / count for m in mapped[start:]])
            best = int(distributed.total(losses.detach()).argmin())
            total = total + losses[best]
            start += best
            matches.append(start + 1)
        return total, matches
