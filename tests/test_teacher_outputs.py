"""The teacher's outputs computed once (`auxprune.teacher_outputs`): what a training batch reads back
equals the teacher's forward pass on that batch, for both heads; the objective uses them in place of
the teacher; a run with them matches a run without to float rounding; the memory budget is kept."""

from __future__ import annotations

import random

import pytest
import torch

from auxprune.config import RunConfig
from auxprune.data.batching import make_loader
from auxprune.distill import LayerDistiller
from auxprune.losses import Objective
from auxprune.pipeline import run_prune
from auxprune.teacher_outputs import TeacherOutputs, estimated_bytes
from conftest import tiny_model

LAYERS = [1, 2]


def items(pairs: bool, n: int = 23, seed: int = 0) -> list[dict]:
    """Encoded examples of varied lengths (a bi-encoder's: two sides apart; a cross-encoder's: one sequence)."""
    rng = random.Random(seed)
    def ids() -> list[int]:
        return [2] + [rng.randrange(5, 99) for _ in range(rng.randrange(2, 12))] + [3]
    if pairs:
        return [{"input_ids": ids(), "input_ids_b": ids(), "label": rng.random() * 5} for _ in range(n)]
    return [{"input_ids": x, "token_type_ids": [0] * len(x), "label": rng.randrange(3)} for x in (ids() for _ in range(n))]


@pytest.mark.parametrize("head", ["bi", "cross"])
def test_a_batch_reads_back_what_the_teacher_computes_on_it(head):
    teacher = tiny_model(num_labels=1, head="bi", label_range=[0.0, 5.0]) if head == "bi" else tiny_model(num_labels=3)
    encoded = items(pairs=head == "bi")
    cached = TeacherOutputs.compute(teacher, encoded, layers=LAYERS, batch_size=4, pad_id=0, device=torch.device("cpu"))
    loader = make_loader(encoded, batch_size=8, pad_id=0, shuffle=True, seed=3)  # other batches than the pass's
    seen = 0
    for batch in loader:
        x = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            direct = teacher(**x, output_hidden_states=True)
        read = cached.for_batch(batch["index"], batch["attention_mask"])
        torch.testing.assert_close(read.logits, direct.logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(read.embeddings, direct.embeddings, atol=1e-5, rtol=1e-5)
        valid = batch["attention_mask"][..., None].bool()
        for layer in range(len(direct.hidden_states)):
            if layer not in LAYERS:
                assert read.hidden_states[layer] is None  # only what layer distillation matches is kept
                continue
            torch.testing.assert_close(read.hidden_states[layer] * valid, direct.hidden_states[layer] * valid,
                                       atol=1e-5, rtol=1e-5)
            assert read.hidden_states[layer][~valid.expand_as(read.hidden_states[layer])].abs().sum() == 0
        assert cached.for_batch(batch["index"], batch["attention_mask"], hidden=False).hidden_states is None
        seen += len(batch["index"])
    assert seen == len(encoded)


def test_the_objective_reads_the_outputs_instead_of_running_the_teacher():
    teacher = tiny_model(num_labels=1, head="bi", label_range=[0.0, 5.0])
    student = tiny_model(num_labels=1, head="bi", label_range=[0.0, 5.0], seed=1).train()
    encoded = items(pairs=True)
    cached = TeacherOutputs.compute(teacher, encoded, layers=LAYERS, batch_size=4, pad_id=0, device=torch.device("cpu"))
    batch = next(iter(make_loader(encoded, batch_size=8, pad_id=0, shuffle=True, seed=3)))
    config = RunConfig()
    losses = {}
    for name, outputs in (("forward", None), ("cached", cached)):
        objective = Objective(student, config, schedule=lambda step: ("prune", step), teacher=teacher,
                              layer_map=LayerDistiller(32, 32, LAYERS), teacher_outputs=outputs)
        losses[name] = {k: v.item() for k, v in objective(batch, 1).items()}
    assert losses["cached"].keys() == losses["forward"].keys() >= {"prediction", "embedding", "layer"}
    for k in losses["forward"]:
        assert losses["cached"][k] == pytest.approx(losses["forward"][k], rel=1e-5, abs=1e-7), k

    class Refuses(torch.nn.Module):  # a teacher that must not run: every target term comes from the outputs
        def forward(self, *args, **kwargs):
            raise AssertionError("the teacher ran")
    objective = Objective(student, config, schedule=lambda step: ("prune", step), teacher=Refuses(),
                          layer_map=LayerDistiller(32, 32, LAYERS), teacher_outputs=cached)
    assert objective(batch, 1)["layer"].item() == pytest.approx(losses["forward"]["layer"], rel=1e-5)
    objective.layer_map.teacher_layers = [2, 1]  # as distill.teacher_layers may list them: still read back
    assert torch.isfinite(objective(batch, 1)["layer"])


def test_the_estimate_counts_every_token_of_every_side():
    encoded = [{"input_ids": [1] * 4, "input_ids_b": [1] * 6}, {"input_ids": [1] * 5}]
    assert estimated_bytes(encoded, [2, 4], width=8) == (4 + 6 + 5) * 2 * 8 * 4


def _run(tiny_bert, data_dir, out, **distill):
    config = RunConfig.model_validate({
        "model": {"name": str(tiny_bert), "max_seq_len": 32}, "data": {"task": "glue/stsb", "data_dir": str(data_dir),
                                                   "max_train_examples": 48, "max_dev_examples": 24},
        "seed": 0, "teacher": {"epochs": 1}, "prune": {"epochs": 2, "target_sparsity": 0.5},
        "finetune": {"epochs": 1}, "distill": distill, "train": {"batch_size": 8, "min_epoch_examples": 0, "threads": 1}})
    return run_prune(config, out, overwrite=True)


def test_a_run_with_the_outputs_computed_once_matches_a_run_without(tiny_bert, data_dir, tmp_path, monkeypatch):
    passes = []
    compute = TeacherOutputs.compute.__func__
    monkeypatch.setattr(TeacherOutputs, "compute", classmethod(lambda cls, *a, **k: passes.append(1) or compute(cls, *a, **k)))
    cached = _run(tiny_bert, data_dir, tmp_path / "cached")
    assert len(passes) == 1  # once, for pruning and fine-tuning
    note = cached["distillation"]["teacher_outputs"]
    assert note["computed_once"] is True and note["layers"] == [1, 2] and 0 < note["mb"] < 1
    direct = _run(tiny_bert, data_dir, tmp_path / "direct", teacher_cache_mb=0)
    assert len(passes) == 1 and direct["distillation"]["teacher_outputs"]["computed_once"] is False
    assert cached["sparsity"] == direct["sparsity"] and cached["structure"] == direct["structure"]
    for name, value in direct["metrics"]["pruned"].items():
        assert cached["metrics"]["pruned"][name] == pytest.approx(value, abs=1e-3), name


def test_outputs_over_the_budget_are_not_computed(tiny_bert, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("auxprune.pipeline.MB", 1)  # a budget of 1 byte a "MB"
    monkeypatch.setattr(TeacherOutputs, "compute", classmethod(lambda cls, *a, **k: pytest.fail("computed")))
    report = _run(tiny_bert, data_dir, tmp_path / "over", teacher_cache_mb=1)
    note = report["distillation"]["teacher_outputs"]
    assert note["computed_once"] is False and note["mb"] > 1  # the size it would have taken, in the patched unit
