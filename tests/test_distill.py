"""Distillation (`auxprune.distill`): the prediction loss, the default teacher layers, and the
layer distiller's matching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from auxprune.distill import LayerDistiller, default_teacher_layers, prediction_loss


def test_prediction_loss_is_temperature_scaled_kl_for_classes():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    t = 2.0
    p = (teacher / t).softmax(-1)
    expected = (p * (p.log() - (student / t).log_softmax(-1))).sum(-1).mean() * t * t
    assert prediction_loss(student, teacher, t).item() == pytest.approx(expected.item(), rel=1e-5)
    assert prediction_loss(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-6)
    assert prediction_loss(student, teacher, 1.0).item() > 0


def test_prediction_loss_is_mse_for_one_regression_output():
    student, teacher = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [4.0]])
    assert prediction_loss(student, teacher, 3.0).item() == pytest.approx((1 + 4) / 2)  # no temperature


def test_prediction_loss_has_gradients_for_the_student_only():
    student = torch.randn(4, 2, requires_grad=True)
    teacher = torch.randn(4, 2)
    prediction_loss(student, teacher, 2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize("layers, count, expected", [
    (12, 4, [3, 6, 9, 12]), (6, 4, [2, 3, 5, 6]), (2, 4, [1, 2]), (1, 4, [1]), (12, 1, [12]),
])
def test_default_teacher_layers_are_evenly_spaced_and_end_at_the_last(layers, count, expected):
    assert default_teacher_layers(layers, count) == expected


def _states(layers: int, batch: int = 2, seq: int = 5, width: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, seq, width, generator=g) for _ in range(layers + 1))


def test_layer_distiller_starts_as_identity_and_matches_the_same_layers():
    states = _states(4)
    mask = torch.ones(2, 5, dtype=torch.long)
    distiller = LayerDistiller(4, 4, [2, 4])
    loss, matches = distiller(states, states, mask)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert matches == [2, 4]


def test_layer_distiller_matches_in_order_the_closest_student_layer():
    teacher = _states(4, seed=1)
    # Student layer 1 copies teacher layer 2, student layer 3 copies teacher layer 4; the rest is noise.
    noise = _states(4, seed=2)
    student = (noise[0], teacher[2], noise[2], teacher[4], noise[4])
    mask = torch.ones(2, 5, dtype=torch.long)
    loss, matches = LayerDistiller(4, 4, [2, 4])(student, teacher, mask)
    assert matches == [1, 3] and loss.item() == pytest.approx(0.0, abs=1e-12)
    # In order: a later teacher layer never matches an earlier student layer than the one before it.
    swapped = (noise[0], teacher[4], noise[2], teacher[2], noise[4])
    _, matches = LayerDistiller(4, 4, [2, 4])(swapped, teacher, mask)
    assert matches == sorted(matches)


def test_layer_distiller_ignores_padding_and_normalises_by_kept_positions():
    teacher = _states(1, seed=3)
    student = tuple(t.clone() for t in teacher)
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[0, 3:] = 0
    student[1][0, 3:] += 100.0  # differences at padded positions do not count
    loss, _ = LayerDistiller(4, 4, [1])(student, teacher, mask)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    student[1][1, 0, 0] += 2.0  # one kept position, one dimension: 4 / (8 kept positions x 4 dims)
    loss, _ = LayerDistiller(4, 4, [1])(student, teacher, mask)
    assert loss.item() == pytest.approx(4.0 / (8 * 4), rel=1e-5)


def test_layer_distiller_maps_a_narrower_student_and_learns_the_map():
    teacher = _states(2, width=6, seed=4)
    student = tuple(t[..., :4] for t in teacher)
    mask = torch.ones(2, 5, dtype=torch.long)
    distiller = LayerDistiller(4, 6, [2])
    assert torch.equal(distiller.map.weight, torch.eye(6, 4))
    loss, _ = distiller(student, teacher, mask)
    loss.backward()
    assert distiller.map.weight.grad.abs().sum() > 0 and math.isfinite(loss.item())
    expected = F.mse_loss(F.pad(teacher[2][..., :4], (0, 2)), teacher[2], reduction="sum") / (10 * 6)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
