"""Data-parallel runs: 2 processes compute what 1 computes at the same global batch, resume exactly,
and what they cannot honour is refused with one line.

The 2-process runs are real `auxprune prune --processes 2` launches (gloo on the CPU) of a tiny
random BERT with dropout off on real RTE rows; the gate noise is then the same draw on every
process and in the 1-process run, so the runs differ only in how sums are split.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import tiny_dims, tiny_model, write_tiny_bert
from safetensors.torch import load_file

from auxprune.checkpoint import KILL_AT_ENV
from auxprune.cli import main
from auxprune.config import build_config
from auxprune.data.batching import BucketBatchSampler
from auxprune.distill import LayerDistiller
from auxprune.losses import Objective
from auxprune.pruners.hard_concrete import HardConcretePruner
from auxprune.transfer.branch import AuxBranch

# 48 examples in global batches of 8 (4 per process): teacher 6 steps, pruning 24, fine-tuning 6.
SETTINGS = ["teacher.epochs=1", "prune.epochs=4", "finetune.epochs=1", "train.batch_size=8", "data.max_dev_examples=40",
            "model.max_seq_len=32", "train.checkpoint_every=4", "train.threads=1", "train.min_epoch_examples=0",
            "train.log_every=4"]


def command(model: Path, data_dir: Path, out: Path, *extra: str) -> list[str]:
    args = ["prune", "--model", str(model), "--task", "glue/rte", "--data-dir", str(data_dir), "--sparsity", "0.5",
            "--max-train-examples", "48", "--seed", "5", "--output", str(out)]
    for setting in SETTINGS:
        args += ["--set", setting]
    return args + list(extra)


def outcome(out: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    return json.loads((out / "report.json").read_text()), load_file(str(out / "model" / "model.safetensors"))


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def still_bert(tmp_path_factory) -> Path:
    """The tiny BERT without dropout."""
    path = tmp_path_factory.mktemp("still_bert")
    write_tiny_bert(path, dropout=0.0)
    return path


@pytest.fixture(scope="module")
def two_processes(still_bert, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "run"
    assert main(command(still_bert, data_dir, out, "--processes", "2")) == 0
    return out


def test_two_processes_compute_what_one_process_computes(two_processes, still_bert, data_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(command(still_bert, data_dir, tmp_path / "one")) == 0
    one, one_weights = outcome(tmp_path / "one")
    two, two_weights = outcome(two_processes)
    assert (one["processes"], two["processes"], two["precision"]) == (1, 2, "fp32")
    assert two["schedule"]["per_process_batch_size"] == 4 and two["schedule"]["phases"] == one["schedule"]["phases"]
    assert two["structure"] == one["structure"] and two["sparsity"] == one["sparsity"]
    assert two_weights.keys() == one_weights.keys()
    assert max((two_weights[k] - one_weights[k]).abs().max().item() for k in one_weights) < 1e-4
    for model in ("teacher", "pruned"):
        assert {k: round(v, 4) for k, v in two["metrics"][model].items()} == \
            {k: round(v, 4) for k, v in one["metrics"][model].items()}
    assert two["lagrangian"] == pytest.approx(one["lagrangian"], rel=1e-4)
    assert two["distillation"]["layer_matches"] == one["distillation"]["layer_matches"]
    # The log is written once, by the main process, with the whole batch's losses.
    logs = [[json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
            for run in (tmp_path / "one", two_processes)]
    assert [(r["phase"], r["step"]) for r in logs[1]] == [(r["phase"], r["step"]) for r in logs[0]]
    for a, b in zip(*logs):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
        assert b.get("expected_sparsity") == pytest.approx(a.get("expected_sparsity"), abs=1e-5)
    assert sorted(p.name for p in two_processes.iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_killed_two_process_run_resumes_identically(two_processes, still_bert, data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    monkeypatch.setenv(KILL_AT_ENV, "step:prune:6")  # both processes die after step 6; the checkpoint of step 4 is kept
    assert main(command(still_bert, data_dir, out, "--processes", "2")) == 128 + signal.SIGKILL
    monkeypatch.delenv(KILL_AT_ENV)
    # One process cannot continue the two processes' random streams: one line, nothing written.
    before = files(out)
    capsys.readouterr()
    assert main(["prune", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "written by 2 process(es), this run has 1" in err and "--processes 2" in err
    assert files(out) == before
    assert main(["prune", "--resume", str(out), "--processes", "2"]) == 0
    report, weights = outcome(out)
    expected_report, expected_weights = outcome(two_processes)
    for key in ("sparsity", "structure", "metrics", "lagrangian", "distillation", "processes"):
        assert report[key] == expected_report[key], key
    assert all(torch.equal(weights[k], expected_weights[k]) for k in expected_weights)
    assert report["resumed_from"] == {"phase": "prune", "step": 4}
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("extra, env, message", [
    (["--processes", "0"], {}, "--processes 0: expected a number of processes, 1 or more"),
    (["--processes", "2", "--set", "train.batch_size=9"], {}, "train.batch_size=9 does not divide over 2 processes"),
    # as `accelerate launch --num_processes 3` starts each process
    ([], {"WORLD_SIZE": "3", "RANK": "0"}, "train.batch_size=8 does not divide over 3 processes"),
], ids=["zero-processes", "batch-does-not-divide", "accelerate-launch"])
def test_what_processes_cannot_honour_is_one_line(extra, env, message, still_bert, data_dir, tmp_path, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(command(still_bert, data_dir, tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("n", [48, 45, 3])
def test_sampler_gives_each_process_its_slice_of_every_global_batch(n):
    lengths = torch.randint(3, 30, (n,), generator=torch.Generator().manual_seed(n)).tolist()
    whole = BucketBatchSampler(lengths, 8, seed=3)
    parts = [BucketBatchSampler(lengths, 8, seed=3, shard=(r, 2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == len(whole)
    for _ in range(2):  # two epochs
        for batch, first, second in zip(whole, *parts, strict=True):
            assert len(first) == len(second) == (len(batch) + 1) // 2
            # a last batch that does not divide repeats its first example
            assert first + second == (batch + batch[:1] if len(batch) % 2 else batch)
    assert all(torch.equal(p.state_dict()["generator"], whole.state_dict()["generator"]) for p in parts)


def test_the_data_parallel_wrapper_sees_every_trained_parameter():
    """DDP wraps the Objective: the student, gates and multipliers, the layer map, the auxiliary heads,
    and the auxiliary side's own encoder copy and gates are all inside it."""
    from test_transfer import aux_task, schedule

    config = build_config("quick", None, [])
    student, teacher = tiny_model(num_labels=2), tiny_model(num_labels=2)
    pruner = HardConcretePruner(tiny_dims(student), ["heads", "ffn_units", "hidden"], 0.9, target=0.5, warmup_steps=4,
                                gate_lr=0.01, lambda1_lr=0.5, lambda2_lr=5.0)
    aux = AuxBranch([aux_task()], student, schedule("constant"), tokenizer=None, seed=0)
    aux.for_pruning(student, pruner, "both", "tied")  # its own encoder copy and gates
    layer_map = LayerDistiller(32, 32, [1, 2])
    objective = Objective(student, config, schedule=lambda step: ("prune", step), pruner=pruner, layer_map=layer_map,
                          aux=aux, teacher=teacher)
    trained = [*student.parameters(), *pruner.parameters(), *layer_map.parameters(), *aux.heads.parameters(),
               *aux.encoder.parameters(), *aux.gates.parameters()]
    inside = {id(p) for p in objective.parameters()}
    assert all(id(p) in inside for p in trained)
    assert not {id(p) for p in teacher.parameters()} & inside  # the frozen teacher is not averaged
    assert {id(p) for p in pruner.parameters()} >= {id(pruner.controller.lambda1), id(pruner.controller.lambda2)}


def test_bi_encoder_with_transfer_on_two_processes_computes_what_one_computes(still_bert, data_dir, tmp_path, capsys):
    """The bi-encoder head (pairs encoded apart) and a labelled auxiliary pair task with distillation on
    its inputs, sharded like the target: the same run as one process, and a Ctrl-C that reaches the
    processes at one step stops them together, with a checkpoint the 2-process resume finishes."""
    extra = ["--set", "model.head=bi", "--aux", "aux/snli_dev.tsv", "--how", "joint",
             "--set", "transfer.aux.0.max_examples=40", "--set", "transfer.phases=[teacher,warmup,prune]"]
    assert main(command(still_bert, data_dir, tmp_path / "one", *extra)) == 0
    stopped = tmp_path / "two"
    os.environ[KILL_AT_ENV] = "SIGINT step:prune:5"
    try:
        assert main(command(still_bert, data_dir, stopped, *extra, "--processes", "2")) == 130
    finally:
        del os.environ[KILL_AT_ENV]
    assert json.loads((stopped / "report.json").read_text())["checkpoint"].endswith("-prune-0000005")
    assert main(["prune", "--resume", str(stopped), "--processes", "2"]) == 0
    (one, one_weights), (two, two_weights) = outcome(tmp_path / "one"), outcome(stopped)
    assert two["head"]["head"] == one["head"]["head"] == "bi"
    assert two["structure"] == one["structure"] and two["sparsity"] == one["sparsity"]
    assert max((two_weights[k] - one_weights[k]).abs().max().item() for k in one_weights) < 1e-4
    for model in ("teacher", "pruned"):
        assert {k: round(v, 4) for k, v in two["metrics"][model].items()} == \
            {k: round(v, 4) for k, v in one["metrics"][model].items()}
    assert two["transfer"]["aux_steps"] == one["transfer"]["aux_steps"] > 0


def test_masked_lm_on_two_processes_resumes_identically(still_bert, data_dir, tmp_path, monkeypatch):
    """Masked LM as the auxiliary task: each process masks its own slice with its own generator, so the
    run differs from a 1-process one by design; killed mid-pruning and resumed, it ends as the
    uninterrupted 2-process run, to the bit (each rank's masking stream is in the checkpoint)."""
    extra = ["--aux", "mlm", "--how", "joint", "--set", "transfer.aux.0.max_examples=40", "--processes", "2"]
    assert main(command(still_bert, data_dir, tmp_path / "whole", *extra)) == 0
    out = tmp_path / "run"
    monkeypatch.setenv(KILL_AT_ENV, "step:prune:6")
    assert main(command(still_bert, data_dir, out, *extra)) == 128 + signal.SIGKILL
    monkeypatch.delenv(KILL_AT_ENV)
    assert main(["prune", "--resume", str(out), "--processes", "2"]) == 0
    (whole, whole_weights), (resumed, resumed_weights) = outcome(tmp_path / "whole"), outcome(out)
    assert all(torch.equal(resumed_weights[k], whole_weights[k]) for k in whole_weights)
    for key in ("sparsity", "structure", "metrics", "lagrangian"):
        assert resumed[key] == whole[key], key
    assert resumed["transfer"]["aux_steps"] == whole["transfer"]["aux_steps"] > 0


def _from_main_worker(rank: int, port: int, calls: Path) -> None:
    import torch.distributed as dist

    from auxprune import distributed
    from auxprune.errors import UserError

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        def compute() -> dict:
            (calls / f"rank{rank}").write_text("called")
            return {"metrics": {"pearson": 0.5 + rank}}

        assert distributed.from_main(compute) == {"metrics": {"pearson": 0.5}}

        def bad_input() -> None:
            raise UserError("reference.txt: expected a model folder")

        # a failure on the main process reaches every process, rather than leaving the others waiting
        with pytest.raises(UserError, match="reference.txt: expected a model folder"):
            distributed.from_main(bad_input)
    finally:
        dist.destroy_process_group()


def test_work_every_process_needs_alike_is_done_by_the_main_process_alone(tmp_path):
    """The dev-set bars (the untrained model's score, the size reference's): computed once, received by all."""
    import torch.multiprocessing as mp

    from auxprune.distributed import _free_port, from_main

    assert from_main(lambda: 3) == 3  # one process: computed here
    mp.spawn(_from_main_worker, args=(_free_port(), tmp_path), nprocs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0"]
