"""Transfer wiring: what is shared, what is tied, what gets gradients, when the weight acts,
where stage 2 starts, and that runs with auxiliary tasks are reproducible and resumable."""

from __future__ import annotations

import json
import math

import pytest
import torch

from auxprune.cli import main
from auxprune.data.batching import make_loader
from auxprune.data.tasks import TaskSpec
from auxprune.pruners.hard_concrete import HardConcreteGates, HardConcretePruner
from auxprune.transfer.branch import AuxBranch
from auxprune.transfer.schedule import Schedule
from auxprune.transfer.sources import AuxTask, check_leak, mask_tokens
from conftest import tiny_dims, tiny_model

STEPS = {"teacher": 10, "warmup": 4, "prune": 6, "finetune": 10}
FAST = ["--set", "teacher.epochs=1", "--set", "prune.epochs=2", "--set", "finetune.epochs=1", "--set", "train.batch_size=8",
        "--set", "data.max_dev_examples=40", "--set", "model.max_seq_len=32", "--set", "train.threads=1",
        "--set", "train.min_epoch_examples=0"]


def schedule(shape: str, phases=("warmup", "prune"), window=(0.0, 1.0)) -> Schedule:
    return Schedule(shape, 2.0, tuple(phases), STEPS, window)


def test_schedule_values_at_chosen_steps():
    # warmup + prune = 10 active steps; t = (step before + step - 1) / 10
    assert schedule("constant")("warmup", 1) == 2.0 and schedule("constant")("prune", 6) == 2.0
    assert schedule("linear_decay")("warmup", 1) == pytest.approx(2.0)
    assert schedule("linear_decay")("prune", 1) == pytest.approx(2.0 * (1 - 0.4))  # 4 warm-up steps before
    assert schedule("linear_decay")("prune", 6) == pytest.approx(2.0 * (1 - 0.9))
    assert schedule("cosine")("prune", 2) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    window = schedule("window", window=(0.2, 0.5))
    assert [window("warmup", s) for s in (1, 2, 3, 4)] == [0.0, 0.0, 2.0, 2.0]
    assert [window("prune", s) for s in (1, 2)] == [2.0, 0.0]
    # phases that are off get zero, whatever the shape
    assert schedule("constant")("teacher", 1) == 0.0 and schedule("constant")("finetune", 3) == 0.0
    teacher_only = schedule("linear_decay", phases=("teacher",))
    assert teacher_only("teacher", 6) == pytest.approx(2.0 * 0.5) and teacher_only("prune", 1) == 0.0


def aux_task(num_labels: int = 3, n: int = 24, seed: int = 0) -> AuxTask:
    g = torch.Generator().manual_seed(seed)
    items = [{"input_ids": torch.randint(5, 99, (7,), generator=g).tolist(), "token_type_ids": [0] * 7,
              "label": i % num_labels} for i in range(n)]
    spec = TaskSpec(name="aux", kind="classification", labels=tuple(f"c{i}" for i in range(num_labels)),
                    metrics=("accuracy",), primary_metric="accuracy")
    return AuxTask("aux", "classification", num_labels, 1.0, make_loader(items, 8, 0, shuffle=True, seed=seed), n, spec)


def branch(student, what: str, share: str):
    gates = HardConcretePruner(tiny_dims(student), ["heads", "ffn_units"], 0.9, target=0.5, warmup_steps=4, gate_lr=0.01,
                               lambda1_lr=0.5, lambda2_lr=5.0)
    aux = AuxBranch([aux_task()], student, schedule("constant"), tokenizer=None, seed=0)
    aux.for_pruning(student, gates, what, share)
    weights, _ = aux.trainable()
    heads = len(list(aux.heads.parameters()))
    own = weights[heads:] + (list(aux.gates.mask_parameters().values()) if aux.own_gates else [])
    return aux, gates, own


@pytest.mark.parametrize("what, share, same_encoder, same_gates", [
    ("both", "hard", True, True), ("weights", "hard", True, False), ("masks", "hard", False, True),
    ("both", "tied", False, False), ("weights", "tied", False, False), ("masks", "tied", False, False),
])
def test_hard_shared_parts_are_the_same_tensors(what, share, same_encoder, same_gates):
    student = tiny_model(num_labels=2)
    aux, gates, own = branch(student, what, share)
    assert (aux.encoder is student) == same_encoder
    assert (aux.gates is gates) == same_gates
    if same_encoder:
        assert all(a is b for a, b in zip(aux.encoder.parameters(), student.parameters()))
    else:
        assert not {id(p) for p in aux.encoder.parameters()} & {id(p) for p in student.parameters()}
    # exactly the new parts are handed to the optimizers
    expected = (0 if same_encoder else len(list(student.auxprune.parameters()))) + \
        (0 if same_gates else len(gates.mask_parameters()))
    assert len(own) == expected


def grads_after_aux_loss(what: str, share: str):
    torch.manual_seed(0)
    student = tiny_model(num_labels=2).train()
    aux, gates, _ = branch(student, what, share)
    z = gates.gates()
    aux_z = z if aux.gates is gates else aux.gates.gates()
    aux.loss(aux.encoder, aux_z, torch.device("cpu")).backward()
    return student, gates, aux


def test_target_gates_get_no_auxiliary_gradient_when_only_weights_are_shared():
    student, gates, aux = grads_after_aux_loss("weights", "hard")
    assert all(p.grad is None or not p.grad.any() for p in gates.parameters())
    assert any(p.grad is not None and p.grad.any() for p in aux.gates.parameters())
    assert student.auxprune.embeddings.word_embeddings.weight.grad.any()  # shared encoder learns from it


def test_masks_only_trains_the_target_gates_through_its_own_encoder():
    student, gates, aux = grads_after_aux_loss("masks", "hard")
    assert all(p.grad is not None and p.grad.any() for p in gates.mask_parameters().values())
    assert all(p.grad is None for p in student.parameters())
    assert aux.encoder.auxprune.embeddings.word_embeddings.weight.grad.any()


def test_label_spaces_stay_apart():
    student, _, aux = grads_after_aux_loss("both", "hard")
    assert aux.heads["aux"].out_features == 3 and student.classifier.out_features == 2
    assert student.classifier.weight.grad is None  # the target head never sees auxiliary labels


def test_tied_copies_get_the_penalty_gradient_and_converge_under_a_strong_tie():
    student = tiny_model(num_labels=2)
    aux, gates, own = branch(student, "both", "tied")
    with torch.no_grad():
        for p in aux.encoder.auxprune.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for la in aux.gates.mask_parameters().values():
            la.add_(0.5)
    start = aux.tie_penalty(student, gates).item()
    assert start > 0
    optimizer = torch.optim.SGD(own, lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        penalty = 10.0 * aux.tie_penalty(student, gates)
        penalty.backward()
        assert all(p.grad is not None for p in own)
        optimizer.step()
    assert aux.tie_penalty(student, gates).item() < 1e-6 * start


def test_masked_lm_masks_only_real_tokens():
    class Tok:
        all_special_ids, mask_token_id = [0, 1, 2], 3

        def __len__(self):
            return 99
    ids = torch.randint(5, 99, (4, 50))
    ids[:, 0], ids[:, -1] = 1, 2
    mask = torch.ones_like(ids)
    mask[0, 40:] = 0
    out = mask_tokens({"input_ids": ids, "attention_mask": mask}, Tok(), torch.Generator().manual_seed(0), 0.3)
    picked = out["labels"] != -100
    assert picked.any() and not picked[:, 0].any() and not picked[:, -1].any() and not picked[0, 40:].any()
    assert torch.equal(out["labels"][picked], ids[picked])
    assert (out["input_ids"][picked] == 3).float().mean() > 0.5


def test_leak_of_target_dev_set_is_refused():
    from auxprune.data.tasks import Example
    from auxprune.errors import UserError

    dev = [Example(f"a {i}", f"b {i}", 0) for i in range(10)]
    check_leak("ok.tsv", [Example("x", "y", 1)] + dev[:3], dev)
    with pytest.raises(UserError, match="dev examples are in it"):
        check_leak("leak.tsv", dev, dev)


def prune_argv(tiny_bert, data_dir, out, *extra):
    return ["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir), "--sparsity", "0.5",
            "--max-train-examples", "48", "--seed", "2", "--output", str(out), "--aux", "aux/snli_dev.tsv",
            "--set", "transfer.aux.0.max_examples=48", *FAST, *extra]


def test_sequential_stage_two_starts_from_the_stage_one_weights(tiny_bert, data_dir, tmp_path, monkeypatch):
    import auxprune.pipeline as pipeline

    seen = {}
    real_stage1, real_fine_tune = pipeline.fine_tune_aux, pipeline.fine_tune

    def stage1(model, aux, **kwargs):
        real_stage1(model, aux, **kwargs)
        seen["after_stage1"] = {k: v.clone() for k, v in model.auxprune.state_dict().items()}

    def fine_tune(model, loader, **kwargs):
        if kwargs["phase"] == "teacher":
            seen["teacher_start"] = {k: v.clone() for k, v in model.auxprune.state_dict().items()}
        return real_fine_tune(model, loader, **kwargs)

    monkeypatch.setattr(pipeline, "fine_tune_aux", stage1)
    monkeypatch.setattr(pipeline, "fine_tune", fine_tune)
    assert main(prune_argv(tiny_bert, data_dir, tmp_path / "seq", "--how", "sequential", "--what", "weights")) == 0
    before, after = seen["after_stage1"], seen["teacher_start"]
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    report = json.loads((tmp_path / "seq" / "report.json").read_text())
    assert report["transfer"]["how"] == "sequential" and report["transfer"]["aux_steps"] == 6  # 48 examples / 8
    assert set(report["transfer"]["aux_metrics"]["after_stage1"]["snli_dev"]) == {"accuracy"}


def _encoder_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.auxprune.state_dict().items()}


@pytest.mark.parametrize("what", ["weights", "masks", "both"])
def test_sequential_pruning_stage_hands_over_what_is_selected(what, tiny_bert, data_dir, tmp_path, monkeypatch, capsys):
    """stage1=prune: the teacher starts from the stage-1 weights (weights, both) or the pre-trained
    ones (masks); the target's gates start from the stage-1 gate logits (masks, both) or fresh."""
    import auxprune.pipeline as pipeline

    seen = {}
    real_stage1, real_fine_tune, real_prune = pipeline.prune_aux, pipeline.fine_tune, pipeline.prune

    def stage1(model, aux, **kwargs):
        seen["pretrained"] = _encoder_state(model)
        gates = real_stage1(model, aux, **kwargs)
        seen["after_stage1"], seen["stage1_gates"] = _encoder_state(model), {k: v.clone() for k, v in gates.mask_parameters().items()}
        return gates

    def fine_tune(model, loader, **kwargs):
        if kwargs["phase"] == "teacher":
            seen["teacher_start"] = _encoder_state(model)
        return real_fine_tune(model, loader, **kwargs)

    def prune_recording(*args, **kwargs):
        seen["in_prune"] = True
        return real_prune(*args, **kwargs)

    real_sample = HardConcreteGates.sample

    def sample(gates):  # the target's gate logits at its first pruning step, before any update
        if seen.get("in_prune") and "prune_start" not in seen:
            seen["prune_start"] = {k: v.detach().clone() for k, v in gates.log_alpha.items()}
        return real_sample(gates)

    monkeypatch.setattr(pipeline, "prune_aux", stage1)
    monkeypatch.setattr(pipeline, "fine_tune", fine_tune)
    monkeypatch.setattr(pipeline, "prune", prune_recording)
    monkeypatch.setattr(HardConcreteGates, "sample", sample)
    out = tmp_path / what
    assert main(prune_argv(tiny_bert, data_dir, out, "--how", "sequential", "--what", what,
                           "--set", "transfer.stage1=prune")) == 0

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert not same(seen["pretrained"], seen["after_stage1"])  # stage 1 trained the encoder
    expected_start = seen["pretrained"] if what == "masks" else seen["after_stage1"]
    assert same(seen["teacher_start"], expected_start)
    assert same(seen["prune_start"], seen["stage1_gates"]) == (what != "weights")
    report = json.loads((out / "report.json").read_text())
    t = report["transfer"]
    assert (t["how"], t["stage1"], t["what"]) == ("sequential", "prune", what)
    summary = capsys.readouterr().out
    assert "transfer: sequential (stage 1: prune" in summary and "stage1 expected sparsity:" in summary
    assert 0 < t["aux_metrics"]["stage1_expected_sparsity"] <= 1
    assert not (out / "checkpoints").exists()  # the stage-1 outcome went with the checkpoints


def test_sequential_tie_pulls_stage_two_towards_stage_one(tiny_bert, data_dir, tmp_path, monkeypatch):
    """share=tied: the penalty's gradient is 2 x strength x (theta - theta1), and a strong tie keeps
    the teacher much closer to the stage-1 weights than hard sharing does."""
    import auxprune.pipeline as pipeline
    from auxprune.transfer.sequential import StageOne

    model = tiny_model()
    anchor = StageOne.after(model, None, "weights", "tied", strength=3.0)
    with torch.no_grad():
        for p in model.auxprune.parameters():
            p.add_(0.1)
    anchor.penalty(model).backward()
    grads = [p.grad for p in model.auxprune.parameters()]
    assert all(g is not None and torch.allclose(g, torch.full_like(g, 2 * 3.0 * 0.1), atol=1e-5) for g in grads)

    distances = {}
    real_fine_tune = pipeline.fine_tune

    def fine_tune(model, loader, **kwargs):
        real_fine_tune(model, loader, **kwargs)
        if kwargs["phase"] == "teacher":
            distances[share] = sum((a - b).pow(2).sum().item() for a, b in
                                   zip(model.auxprune.state_dict().values(), seen_stage1.values()))

    real_stage1 = pipeline.fine_tune_aux

    def stage1(model, aux, **kwargs):
        real_stage1(model, aux, **kwargs)
        seen_stage1.clear()
        seen_stage1.update(_encoder_state(model))

    seen_stage1: dict = {}
    monkeypatch.setattr(pipeline, "fine_tune", fine_tune)
    monkeypatch.setattr(pipeline, "fine_tune_aux", stage1)
    for share in ("hard", "tied"):
        assert main(prune_argv(tiny_bert, data_dir, tmp_path / share, "--how", "sequential", "--what", "weights",
                               "--share", share, "--set", "transfer.tie_strength=100", "--set", "teacher.epochs=3")) == 0
    assert distances["tied"] < 0.2 * distances["hard"], distances
    report = json.loads((tmp_path / "tied" / "report.json").read_text())
    assert report["transfer"]["share"] == "tied" and report["transfer"]["tie_strength"] == 100


def test_joint_run_is_reproducible_and_reports_transfer(tiny_bert, data_dir, tmp_path, capsys):
    reports = []
    for name in ("a", "b"):
        assert main(prune_argv(tiny_bert, data_dir, tmp_path / name, "--how", "joint", "--what", "weights",
                               "--when", "linear_decay")) == 0
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    summary = capsys.readouterr().out  # the end-of-run summary says what the auxiliary tasks did
    assert "transfer: joint from snli_dev" in summary
    assert "distillation on their inputs x 3.0 over warmup+prune+finetune" in " ".join(summary.split())  # wrapped
    assert "auxiliary dev (after stage1):" in summary and "auxiliary dev (pruned):" in summary
    first, second = reports
    assert first["metrics"] == second["metrics"] and first["structure"] == second["structure"]
    t = first["transfer"]
    assert (t["how"], t["what"], t["share"], t["when"]["shape"]) == ("joint", "weights", "hard", "linear_decay")
    assert t["aux"][0]["labels"] == ["contradiction", "entailment", "neutral"]  # its own label space
    # the default recipe: the teacher's intermediate epoch on the auxiliary data (6 batches), then at every
    # pruning step (warmup + prune: 12) one batch for the auxiliary loss and one to distil the teacher on,
    # and one to distil it on at every fine-tuning step (6)
    assert (t["teacher_aux_epochs"], t["aux_distill_weight"], t["aux_distill_phases"]) == (1, 3, ["warmup", "prune", "finetune"])
    assert t["aux_steps"] == 6 + 12 + 12 + 6
    assert first["metrics"]["pruned"].keys() == {"accuracy"}


def test_auxiliary_tasks_alone_select_the_measured_recipe():
    from auxprune.config import build_config

    aux = {"transfer": {"aux": [{"task": "aux/snli_dev.tsv"}]}}
    t = build_config(overrides=[aux]).transfer
    assert (t.how, t.what, t.share, t.when, t.teacher_aux_epochs, t.aux_distill_weight) == \
        ("joint", "both", "hard", "linear_decay", 1, 3)
    assert build_config(overrides=[{"transfer": {}}]).transfer.how == "none"
    # a given teacher is used as it is; no distillation, nothing to distil on auxiliary inputs
    assert build_config(overrides=[aux, {"teacher": {"path": "t"}}]).transfer.teacher_aux_epochs == 0
    assert build_config(overrides=[aux, {"distill": {"enabled": False}}]).transfer.aux_distill_weight == 0
    # sequential transfer has its own stage 1 and no pruning-time auxiliary batches
    seq = build_config(overrides=[aux, {"transfer": {"how": "sequential"}}]).transfer
    assert (seq.what, seq.teacher_aux_epochs, seq.aux_distill_weight) == ("weights", 0, 0)


def test_distilling_on_auxiliary_inputs_draws_a_batch_per_pruning_step(tiny_bert, data_dir, tmp_path):
    # weight 0: no auxiliary task loss, so every auxiliary batch drawn is one the teacher is distilled on
    runs = {}
    for name, strength in (("off", 0), ("on", 1)):
        assert main(prune_argv(tiny_bert, data_dir, tmp_path / name, "--how", "joint", "--set", "transfer.weight=0",
                               "--set", "transfer.teacher_aux_epochs=0", "--set", "transfer.aux_distill_phases=[warmup,prune]",
                               "--set", f"transfer.aux_distill_weight={strength}", "--set", "train.log_every=1")) == 0
        report = json.loads((tmp_path / name / "report.json").read_text())
        lines = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        runs[name] = report, [line for line in lines if line.get("phase") == "prune"]
    (off, off_log), (on, on_log) = runs["off"], runs["on"]
    assert off["transfer"]["aux_steps"] == 0 and off["transfer"]["aux_distill_weight"] is None
    assert on["transfer"]["aux_steps"] == 12 and on["transfer"]["aux_distill_weight"] == 1  # warmup + prune steps
    assert all(line["loss_aux_distill"] > 0 for line in on_log) and "loss_aux_distill" not in off_log[0]
    assert on_log[0]["loss"] > off_log[0]["loss"]  # the same first step, plus the distillation term


def test_auxiliary_distillation_acts_in_the_phases_it_is_given(tiny_bert, data_dir, tmp_path):
    runs = {}
    for name, phases in (("prune", "[warmup,prune]"), ("finetune", "[finetune]"), ("all", "[warmup,prune,finetune]")):
        assert main(prune_argv(tiny_bert, data_dir, tmp_path / name, "--how", "joint", "--set", "transfer.weight=0",
                               "--set", "transfer.teacher_aux_epochs=0", "--set", "transfer.aux_distill_weight=1",
                               "--set", f"transfer.aux_distill_phases={phases}", "--set", "train.log_every=1")) == 0
        report = json.loads((tmp_path / name / "report.json").read_text())
        lines = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        runs[name] = report["transfer"], {p: [line for line in lines if line.get("phase") == p] for p in ("prune", "finetune")}
    steps = runs["all"][0]["when"]["phase_steps"]
    pruning, finetuning = steps["warmup"] + steps["prune"], steps["finetune"]
    assert finetuning > 0
    assert [runs[name][0]["aux_steps"] for name in ("prune", "finetune", "all")] == \
        [pruning, finetuning, pruning + finetuning]  # one auxiliary batch per step where it acts
    assert runs["finetune"][0]["aux_distill_phases"] == ["finetune"]
    for name, (prune_on, finetune_on) in {"prune": (True, False), "finetune": (False, True), "all": (True, True)}.items():
        logs = runs[name][1]
        assert all(("loss_aux_distill" in line) == prune_on for line in logs["prune"])
        assert all(("loss_aux_distill" in line) == finetune_on for line in logs["finetune"])
        assert all(line["loss_aux_distill"] > 0 for line in logs["finetune"] if finetune_on)


@pytest.mark.parametrize("extra, message", [
    (["--how", "sequential", "--set", "transfer.aux_distill_weight=1"], "needs how=joint"),
    (["--how", "joint", "--set", "transfer.aux_distill_weight=1", "--set", "distill.enabled=false"], "needs distill.enabled=true"),
    (["--how", "joint", "--set", "transfer.aux=[]"], "needs at least one auxiliary task"),
    (["--how", "sequential", "--what", "masks"], "transfers weights only"),
    (["--how", "sequential", "--share", "tied", "--set", "transfer.tie_strength=0"], "tie_strength > 0"),
    (["--how", "sequential", "--what", "both"], "needs stage1=prune"),
    (["--how", "joint", "--set", "transfer.window=[0.6,0.2]"], "window"),
    (["--how", "joint", "--aux", "aux/snli_dev.tsv"], "given twice"),
    (["--how", "joint", "--set", "transfer.aux.0.task=glue/rte/dev"], "glue/rte/dev"),
])
def test_invalid_transfer_options_are_one_line_errors(extra, message, tiny_bert, data_dir, tmp_path, capsys):
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "x", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("extra, names", [
    (["--how", "joint", "--set", "transfer.teacher_aux_epochs=1"], "transfer.teacher_aux_epochs"),
    (["--how", "sequential"], "transfer.how=sequential"),
])
def test_auxiliary_training_before_a_given_teacher_is_refused(extra, names, tiny_bert, data_dir, tmp_path, capsys):
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "x", "--set", f"teacher.path={tiny_bert}", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith(f"auxprune: error: {names} trains the encoder") and "drop teacher.path" in err
    assert not (tmp_path / "x").exists()


def test_auxiliary_file_holding_the_target_dev_set_is_refused(tiny_bert, data_dir, tmp_path, capsys):
    dev = (data_dir / "glue" / "RTE" / "dev.tsv").read_text(encoding="utf-8")
    leak = tmp_path / "leak.tsv"
    leak.write_text(dev, encoding="utf-8")
    code = main(prune_argv(tiny_bert, data_dir, tmp_path / "x", "--how", "joint", "--set", f"transfer.aux.0.task={leak}"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "leak.tsv" in err and "dev examples are in it" in err


def test_auxiliary_heads_are_cut_with_the_hidden_dimensions():
    """After the cut, a head over the pooled vector reads the kept dimensions: it gives on the cut
    model exactly what it gave on the gated dense model."""
    from auxprune.surgery import cut
    from conftest import sample_masks, tiny_batch

    model = tiny_model(num_labels=2, pooling="mean")
    masks = sample_masks(model)
    aux = AuxBranch([aux_task()], model, schedule("constant"), tokenizer=None, seed=0)
    batch = tiny_batch()
    with torch.no_grad():
        expected = aux.heads["aux"](model.auxprune.encode(**batch, gates=masks.as_gates())[0])
        small = cut(model, masks)
        aux.cut(masks, small.config.pooling)
        assert aux.heads["aux"].in_features == small.config.hidden_size < model.config.hidden_size
        assert torch.allclose(aux.heads["aux"](small.auxprune.encode(**batch)[0]), expected, atol=1e-5)
        assert torch.isfinite(aux.loss(small, None, torch.device("cpu")))



def test_every_auxiliary_pair_head_is_cut_with_the_hidden_dimensions():
    """A bi-encoder's pair heads (regression, which has no parameters; cosine; [u, v, |u - v|])
    follow the cut: each gives on the cut model what it gave on the gated dense model."""
    from dataclasses import replace

    from auxprune.surgery import cut
    from conftest import sample_masks, tiny_batch

    model = tiny_model(num_labels=1, pooling="mean", head="bi")
    masks = sample_masks(model)
    tasks = [replace(aux_task(n), name=f"aux{n}", pairs=True) for n in (1, 2, 3)]
    aux = AuxBranch(tasks, model, schedule("constant"), tokenizer=None, seed=0)
    assert [aux.heads[f"aux{n}"].kind for n in (1, 2, 3)] == ["regression", "cosine", "concat"]
    batch = tiny_batch(batch=4)
    with torch.no_grad():
        pooled = model.auxprune.encode(**batch, gates=masks.as_gates())[0]
        expected = {key: head(pooled) for key, head in aux.heads.items()}
        small = cut(model, masks)
        aux.cut(masks, small.config.pooling)
        pooled = small.auxprune.encode(**batch)[0]
        for key, head in aux.heads.items():
            assert torch.allclose(head(pooled), expected[key], atol=1e-5), key
    assert aux.heads["aux3"].width == small.config.hidden_size < model.config.hidden_size

def test_joint_run_with_hidden_dimensions_pruned_ends_with_auxiliary_metrics(tiny_bert, data_dir, tmp_path):
    """`--aux` with `prune.families` including `hidden`: the auxiliary heads follow the cut, so the
    final fine-tuning trains them and the auxiliary dev metrics of the pruned model are computed."""
    out = tmp_path / "hidden"
    assert main(prune_argv(tiny_bert, data_dir, out, "--aux", "mlm", "--how", "joint", "--what", "both",
                           "--set", "transfer.aux.1.max_examples=48", "--set", "model.pooling=mean",
                           "--set", "prune.families=[heads,ffn_units,hidden]",
                           "--set", "transfer.phases=[warmup,prune,finetune]", "--set", "prune.init_keep_prob=0.6",
                           "--set", "transfer.aux_distill_weight=0")) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["structure"]["hidden_kept"] < report["structure"]["hidden_total"] == 32  # hidden dimensions were pruned
    assert set(report["transfer"]["aux_metrics"]["pruned"]["snli_dev"]) == {"accuracy"}


def test_every_trained_parameter_moves_to_the_accelerator_device(tiny_bert, data_dir, tmp_path, monkeypatch):
    """Whatever an optimizer trains (auxiliary heads, the auxiliary side's own gates, the pruner's
    gates and multipliers, the layer map) is in a module handed to `accelerator.prepare`, which
    moves it to the accelerator's device (on a GPU an auxiliary head left behind fails the first step)."""
    import auxprune.precision as precision
    from accelerate import Accelerator

    prepared_params, trained = set(), []

    class Recording(Accelerator):
        def prepare(self, *objects, **kwargs):
            for obj in objects:
                if isinstance(obj, torch.nn.Module):
                    prepared_params.update(id(p) for p in obj.parameters())
                elif isinstance(obj, torch.optim.Optimizer):
                    trained.extend(p for group in obj.param_groups for p in group["params"])
            return super().prepare(*objects, **kwargs)

    monkeypatch.setattr(precision, "Accelerator", Recording)  # the run's accelerator (precision.make_accelerator)
    assert main(prune_argv(tiny_bert, data_dir, tmp_path / "run", "--how", "joint", "--what", "weights",
                           "--set", "transfer.phases=[teacher,warmup,prune,finetune]")) == 0
    assert trained and all(id(p) in prepared_params for p in trained)


def test_summary_leaves_out_auxiliary_dev_lines_without_metrics():
    """Masked LM has no dev split: no empty 'auxiliary dev' lines for it."""
    from auxprune.summary import transfer_lines

    t = {"aux": [{"name": "mlm:target", "train_examples": 40}], "how": "joint", "what": "both", "share": "hard",
         "when": None, "aux_steps": 35, "aux_metrics": {"after_stage1": {}, "pruned": {}}}
    assert not any("auxiliary dev" in line for line in transfer_lines(t))
    t["aux_metrics"]["pruned"] = {"snli": {"accuracy": 0.5}}
    assert transfer_lines(t)[-1] == "auxiliary dev (pruned): snli accuracy 0.5000"
