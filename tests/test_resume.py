"""Nothing lost: a run killed at any point and resumed ends exactly as an uninterrupted run.

The runs are real `auxprune prune` processes on a tiny random BERT and real RTE rows, killed
with SIGKILL (or sent SIGINT) at chosen points through the AUXPRUNE_TEST_KILL_AT hook.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forked_cli import run_cli

from auxprune.checkpoint import KILL_AT_ENV, Checkpointer, Value
from auxprune.data.batching import BucketBatchSampler

# 48 examples in batches of 8: teacher 6 steps, pruning 12, fine-tuning 6; a checkpoint every 4.
SETTINGS = ["teacher.epochs=1", "prune.epochs=2", "finetune.epochs=1", "train.batch_size=8", "data.max_dev_examples=40",
            "model.max_seq_len=32", "train.checkpoint_every=4", "train.threads=1",
            "train.min_epoch_examples=0"]


def prune_command(tiny_bert: Path, data_dir: Path, out: Path) -> list[str]:
    command = [sys.executable, "-m", "auxprune.cli", "prune", "--model", str(tiny_bert), "--task", "glue/rte",
               "--data-dir", str(data_dir), "--sparsity", "0.5", "--max-train-examples", "48", "--seed", "5",
               "--output", str(out)]
    for setting in SETTINGS:
        command += ["--set", setting]
    return command


def run(command: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_ENV}
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    assert command[:3] == [sys.executable, "-m", "auxprune.cli"]
    return run_cli(command[3:], env)


def resume_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "auxprune.cli", "prune", "--resume", str(out)]


def outcome(out: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    report = json.loads((out / "report.json").read_text())
    kept = {k: report[k] for k in ("status", "sparsity", "expected_sparsity_at_end_of_pruning", "params", "structure",
                                   "metrics", "lagrangian", "distillation")}
    return kept, load_file(str(out / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(tiny_bert, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    done = run(prune_command(tiny_bert, data_dir, out))
    assert done.returncode == 0, done.stderr
    return outcome(out)


def assert_same_as_reference(out: Path, reference) -> None:
    report, weights = outcome(out)
    expected_report, expected_weights = reference
    assert report == expected_report
    assert weights.keys() == expected_weights.keys()
    for name, tensor in expected_weights.items():
        assert torch.equal(weights[name], tensor), name
    assert not (out / "checkpoints").exists()  # cleared once the outputs are complete


def check_after_kill(out: Path, point: str) -> None:
    checkpoints = Checkpointer(out).all()
    assert len(checkpoints) <= 2  # rotated
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    assert report.get("status") != "ok"
    where, phase, step = point.split(":")
    if where == "checkpoint":  # killed while writing: the half-written folder is never taken for a checkpoint
        assert list((out / "checkpoints").glob(f".tmp-*-{phase}-{int(step):07d}"))
        assert (checkpoints[-1].phase, checkpoints[-1].step) != (phase, int(step))


@pytest.mark.parametrize("kill_points", [
    # mid-phase between checkpoints; while writing a checkpoint; right before the end-of-phase
    # checkpoint; between phases, right after pruning's record; in the final fine-tuning
    ["step:teacher:3", "checkpoint:prune:4", "step:prune:12", "recorded:prune:0", "step:finetune:5"],
    # right after the teacher's last checkpoint, then after its record; at the first pruning step;
    # right after a checkpoint; while writing fine-tuning's record
    ["checkpoint:teacher:6", "recorded:teacher:0", "step:prune:1", "step:prune:9", "checkpoint:finetune:4",
     "record:finetune:0"],
], ids=["chain-a", "chain-b"])
def test_killed_and_resumed_run_is_identical(kill_points, reference, tiny_bert, data_dir, tmp_path):
    out = tmp_path / "run"
    first = run(prune_command(tiny_bert, data_dir, out), kill_at=kill_points[0])
    assert first.returncode == -signal.SIGKILL, first.stderr
    for previous, point in zip(kill_points, kill_points[1:]):
        check_after_kill(out, previous)
        killed = run(resume_command(out), kill_at=point)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    check_after_kill(out, kill_points[-1])
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    assert_same_as_reference(out, reference)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("event") == "resumed") == len(kill_points)


def test_ctrl_c_stops_cleanly_and_resumes(reference, tiny_bert, data_dir, tmp_path):
    out = tmp_path / "run"
    stopped = run(prune_command(tiny_bert, data_dir, out), kill_at="SIGINT step:prune:7")
    assert stopped.returncode == 130
    err = stopped.stderr.strip().splitlines()[-1]
    assert err.startswith("auxprune: stopped; checkpoint saved") and f"--resume {out}" in err
    assert "Traceback" not in stopped.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "interrupted" and report["checkpoint"].endswith("-prune-0000007")
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    assert_same_as_reference(out, reference)


def test_resume_reads_the_dev_scores_measured_before_the_checkpoint(reference, tiny_bert, data_dir, tmp_path):
    # The teacher's dev metrics and the untrained bar are measured once; a resumed run takes them from the
    # checkpoint's metadata instead of spending minutes (a base-size model) on the same numbers again.
    out = tmp_path / "run"
    first = run(prune_command(tiny_bert, data_dir, out), kill_at="step:prune:9")
    assert first.returncode == -signal.SIGKILL, first.stderr
    newest = Checkpointer(out).latest()
    meta = json.loads((newest.path / "meta.json").read_text())
    assert meta["known"]["teacher_metrics"] == reference[0]["metrics"]["teacher"]
    assert meta["known"]["untrained"] is None  # a tiny random BERT is no sentence-embedding model: no bar
    teacher = {**meta["known"]["teacher_metrics"], "accuracy": 0.123}
    untrained = {"method": "stand-in", "metrics": {"accuracy": 0.456}}
    meta["known"] = {"teacher_metrics": teacher, "untrained": untrained}
    (newest.path / "meta.json").write_text(json.dumps(meta))
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["teacher"] == teacher and report["untrained"] == untrained
    assert report["metrics"]["pruned"] == reference[0]["metrics"]["pruned"]  # the rest as an uninterrupted run


def test_resume_refuses_finished_runs_and_conflicting_options(tiny_bert, data_dir, tmp_path, capsys):
    from auxprune.cli import main

    out = tmp_path / "run"
    out.mkdir()
    assert main(["prune", "--resume", str(out)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["prune", "--resume", str(out), "--task", "glue/rte", "--sparsity", "0.3"]) == 2
    assert "drop --task, --sparsity" in capsys.readouterr().err
    (out / "config.yaml").write_text("seed: 1\n")
    (out / "report.json").write_text(json.dumps({"status": "ok"}))
    assert main(["prune", "--resume", str(out)]) == 2
    assert "already finished" in capsys.readouterr().err


def test_sampler_continues_mid_epoch_and_across_epochs():
    lengths = [(i * 7) % 23 for i in range(50)]
    original = BucketBatchSampler(lengths, 4, seed=3, window=2)
    first = iter(original)
    seen = [next(first) for _ in range(5)]
    state = original.state_dict()
    expected = list(first) + list(original) + list(original)  # the rest of this epoch, then two more
    copy = BucketBatchSampler(lengths, 4, seed=99, window=2)
    copy.load_state_dict(state)
    rest = list(copy)
    assert rest + list(copy) + list(copy) == expected
    # The copy never repeats what was already served: the 5 served batches and the rest of the
    # epoch are disjoint and together hold every example once.
    served = [i for batch in seen for i in batch]
    remaining = [i for batch in rest for i in batch]
    assert len(seen) == 5 and not set(served) & set(remaining)
    assert sorted(served + remaining) == list(range(len(lengths)))


def test_sampler_phase_end_starts_a_new_epoch():
    lengths = list(range(30))
    original = BucketBatchSampler(lengths, 4, seed=0)
    it = iter(original)
    next(it)
    original.end_epoch()  # a phase stopped after one batch
    state = original.state_dict()
    expected = list(original)
    copy = BucketBatchSampler(lengths, 4, seed=0)
    copy.load_state_dict(state)
    assert list(copy) == expected


def test_checkpoints_rotate_and_restore_values(tmp_path):
    checkpoints = Checkpointer(tmp_path, every=3, keep=2)
    assert [checkpoints.due(s) for s in (1, 3, 6)] == [False, True, True]
    for step in (3, 6, 9):
        checkpoints.save("prune", step, {"value": Value({"step": step})}, {"timing": {"prune": 1.0}})
    names = [c.path.name for c in checkpoints.all()]
    assert names == ["000001-prune-0000006", "000002-prune-0000009"]
    latest = checkpoints.latest()
    assert (latest.phase, latest.step, latest.meta["timing"]) == ("prune", 9, {"prune": 1.0})
    assert latest.load()["value"] == {"step": 9}


def test_disk_full_while_saving_keeps_the_checkpoint(reference, tiny_bert, data_dir, tmp_path, monkeypatch, capsys):
    from auxprune.cli import main
    from auxprune.model.encoder import AuxpruneForSequenceClassification

    out = tmp_path / "run"
    real_save = AuxpruneForSequenceClassification.save_pretrained

    def disk_full(self, folder, **kwargs):
        if Path(folder).name == ".model.tmp":  # the final model; the teacher saves fine
            (Path(folder)).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "model.safetensors").write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(self, folder, **kwargs)

    monkeypatch.setattr(AuxpruneForSequenceClassification, "save_pretrained", disk_full)
    argv = prune_command(tiny_bert, data_dir, out)[3:]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert err.startswith("auxprune: error:") and "No space left on device" in err and f"--resume {out}" in err
    assert not (out / "model").exists() and not (out / ".model.tmp").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and "finetune" in report["checkpoint"]
    monkeypatch.undo()
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    assert_same_as_reference(out, reference)


def test_run_with_auxiliary_tasks_resumes_identically(tiny_bert, data_dir, tmp_path):
    """The auxiliary state (heads, own gates, stream positions, masking RNG) is in the checkpoints."""
    transfer = ["--aux", "aux/snli_dev.tsv", "--aux", "mlm", "--how", "joint", "--what", "weights", "--when", "cosine",
                "--set", "transfer.aux.0.max_examples=40", "--set", "transfer.aux.1.max_examples=40",
                "--set", "transfer.phases=[teacher,warmup,prune,finetune]"]
    reference_dir, out = tmp_path / "reference", tmp_path / "run"
    done = run(prune_command(tiny_bert, data_dir, reference_dir) + transfer)
    assert done.returncode == 0, done.stderr
    expected = outcome(reference_dir)
    killed = run(prune_command(tiny_bert, data_dir, out) + transfer, kill_at="step:prune:7")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    killed = run(resume_command(out), kill_at="step:finetune:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    assert_same_as_reference(out, expected)
    transfer_report = json.loads((out / "report.json").read_text())["transfer"]
    assert transfer_report == json.loads((reference_dir / "report.json").read_text())["transfer"]


def test_sequential_pruning_stage_with_ties_resumes_identically(tiny_bert, data_dir, tmp_path):
    """Killed in stage 1, in the teacher and in pruning: the stage-1 gates and the tie's anchor
    come back from the run folder, and the result is the uninterrupted one."""
    transfer = ["--aux", "aux/snli_dev.tsv", "--how", "sequential", "--what", "both", "--share", "tied",
                "--set", "transfer.stage1=prune", "--set", "transfer.aux.0.max_examples=40"]
    reference_dir, out = tmp_path / "reference", tmp_path / "run"
    done = run(prune_command(tiny_bert, data_dir, reference_dir) + transfer)
    assert done.returncode == 0, done.stderr
    killed = run(prune_command(tiny_bert, data_dir, out) + transfer, kill_at="step:stage1:5")  # 5 of 5 steps
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for point in ("step:teacher:3", "step:prune:5"):
        killed = run(resume_command(out), kill_at=point)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = run(resume_command(out))
    assert finished.returncode == 0, finished.stderr
    assert_same_as_reference(out, outcome(reference_dir))
    report = json.loads((out / "report.json").read_text())["transfer"]
    assert (report["stage1"], report["what"], report["share"]) == ("prune", "both", "tied")
    resumed = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"resumed"' in line]
    assert [(r["phase"], r["step"]) for r in resumed] == [("stage1", 4), ("stage1", 5), ("prune", 4)]


def test_checkpoint_of_another_version_is_a_user_error():
    """A checkpoint without a state the loop now restores (older layout) is refused in one line."""
    from auxprune.checkpoint import LoopState
    from auxprune.errors import UserError

    state = LoopState("prune", restore={"model": {}, "gates": {}, "step": 3, "rng": {}})
    with pytest.raises(UserError, match="has no pruner: it was written by another version"):
        state.start({"model": Value({}), "pruner": Value({})})


def test_resuming_an_old_layout_does_not_advise_resuming(tiny_bert, data_dir, tmp_path, capsys):
    """Through the CLI: the one line says to start again, without the usual '--resume' advice."""
    from auxprune.checkpoint import Checkpointer
    from auxprune.cli import main

    out = tmp_path / "run"
    assert main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir), "--sparsity", "0.5",
                 "--max-train-examples", "24", "--output", str(out), *[x for s in SETTINGS for x in ("--set", s)]]) == 0
    (out / "report.json").write_text(json.dumps({"status": "interrupted", "task": "glue/rte"}))
    Checkpointer(out, 1, 2).save("prune", 1, {"model": Value({}), "gates": Value({}), "step": Value(1)},
                                 {"precision": "fp32"})
    capsys.readouterr()
    assert main(["prune", "--resume", str(out)]) == 2
    # stderr also carries the progress bars of the phases before the failing one
    errors = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("auxprune: error: ")
    assert "start the run again without resuming" in errors[0] and "--resume" not in errors[0]


def test_phase_driver_restores_finished_phases_and_reruns_the_rest(tmp_path):
    """The resume contract on toy phases: a finished phase with a record is restored, not run; a
    phase without `save` runs again; the continuation (RNG) is the one the last record saved."""
    from auxprune.checkpoint import LoopState, StopRequest
    from auxprune.pipeline import Timer
    from auxprune.phases import Phase, run_phases

    calls: list[str] = []
    value = Value(0)

    def phases() -> list[Phase]:
        def train(state: LoopState) -> None:
            calls.append("train")
            value.value = int(torch.randint(0, 10**6, ()).item())

        return [Phase("train", train, lambda: {"value": value}, lambda saved: calls.append(f"restore {saved['value']}")),
                Phase("measure", lambda state: calls.append(f"measure {torch.rand(()).item():.6f}")),
                Phase("last", lambda state: calls.append("last"), dict, lambda saved: calls.append("restore last"))]

    checkpoints = Checkpointer(tmp_path, every=1, keep=2)
    torch.manual_seed(0)
    run_phases(phases(), checkpoints=checkpoints, latest=None, loop_state=LoopState, continuation={}, timer=Timer(),
               stop=StopRequest())
    first = list(calls)
    assert first[0] == "train" and first[1].startswith("measure") and first[2] == "last"
    assert checkpoints.record("train") is not None and checkpoints.record("measure") is None

    # Resumed with the newest checkpoint in phase `last`: `train` comes back from its record with
    # the RNG it ended with, so `measure` draws what it drew the first time.
    calls.clear()
    (checkpoints.records / "last").rename(tmp_path / "gone")
    checkpoints.save("last", 1, {"step": Value(1)})
    torch.manual_seed(1)
    run_phases(phases(), checkpoints=checkpoints, latest=checkpoints.latest(), loop_state=LoopState, continuation={},
               timer=Timer(), stop=StopRequest())
    assert calls == [f"restore {value.value}", first[1], "last"]

    # A checkpoint in a later phase without the records of the phases before it is another layout.
    shutil.rmtree(checkpoints.records)
    from auxprune.errors import CannotResume
    with pytest.raises(CannotResume, match="phase train left no record"):
        run_phases(phases(), checkpoints=checkpoints, latest=checkpoints.latest(), loop_state=LoopState,
                   continuation={}, timer=Timer(), stop=StopRequest())
