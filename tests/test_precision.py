"""Training precision: bf16 trains and saves fp32 weights; what cannot be honoured is one line."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from auxprune import precision
from auxprune.checkpoint import Checkpointer, Value
from auxprune.cli import main

FAST = ["--set", "teacher.epochs=1", "--set", "prune.epochs=1", "--set", "finetune.epochs=1", "--set", "train.batch_size=8",
        "--set", "data.max_dev_examples=24", "--set", "model.max_seq_len=32", "--set", "train.min_epoch_examples=0",
        "--set", "train.threads=1"]


def prune(tiny_bert, data_dir, out, *extra):
    return main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir), "--sparsity", "0.5",
                 "--max-train-examples", "24", "--output", str(out), *FAST, *extra])


def test_bf16_trains_saves_fp32_and_reports_its_precision(tiny_bert, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert prune(tiny_bert, data_dir, tmp_path / "bf16", "--set", "train.precision=bf16") == 0
    report = json.loads((tmp_path / "bf16" / "report.json").read_text())
    assert report["precision"] == "bf16" and report["config"]["train"]["precision"] == "bf16"
    assert any("bf16 is emulated" in w for w in report["warnings"])
    for folder in ("model", "teacher"):
        weights = load_file(tmp_path / "bf16" / folder / "model.safetensors")
        assert {str(t.dtype) for t in weights.values()} == {"torch.float32"}, folder
    log = [json.loads(line) for line in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines()]
    assert all(abs(r["loss"]) < 1e6 for r in log if "loss" in r)
    # The process's Accelerate state goes back to fp32 for the next run.
    assert prune(tiny_bert, data_dir, tmp_path / "fp32") == 0
    assert json.loads((tmp_path / "fp32" / "report.json").read_text())["precision"] == "fp32"


def test_fp16_on_the_cpu_is_one_line_and_writes_nothing(tiny_bert, data_dir, tmp_path, capsys):
    assert prune(tiny_bert, data_dir, tmp_path / "out", "--set", "train.precision=fp16") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.precision=fp16 needs a GPU" in err
    assert not (tmp_path / "out").exists()


def test_resuming_in_another_precision_is_refused(tiny_bert, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert prune(tiny_bert, data_dir, out) == 0
    # As a bf16 run of this folder interrupted in pruning would leave it: the fp32 config cannot continue it.
    report = json.dumps({"status": "interrupted", "task": "glue/rte"})
    (out / "report.json").write_text(report)
    Checkpointer(out, 1, 2).save("prune", 1, {"step": Value(1)}, {"precision": "bf16"})
    capsys.readouterr()
    assert main(["prune", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained in bf16" in err and "train.precision=fp32" in err
    assert (out / "report.json").read_text() == report


@pytest.mark.parametrize("flags, native", [("flags : fpu avx2 avx512_bf16", True), ("flags : fpu avx2 amx_bf16", True),
                                           ("flags : fpu avx2 avx512f", False)])
def test_native_bf16_is_read_from_the_cpu_flags(flags, native, monkeypatch, tmp_path, fp32_on_every_machine):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(flags)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
    assert fp32_on_every_machine() is native  # the real reader; the tests' CPU has no bf16 otherwise (conftest)


@pytest.mark.parametrize("native, chosen, why", [(True, "bf16", "multiplies bf16 in hardware"),
                                                 (False, "fp32", "no bf16 hardware")])
def test_auto_trains_in_bf16_only_where_the_cpu_multiplies_it(native, chosen, why, tiny_bert, data_dir, tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    out = tmp_path / "run"
    assert prune(tiny_bert, data_dir, out, "--set", "train.precision=auto") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["precision"] == chosen and report["precision_why"].startswith("auto: ") and why in report["precision_why"]
    # What was chosen is what the run folder holds: a resume on another machine continues in it.
    assert f"precision: {chosen}" in (out / "config.yaml").read_text()
    assert not any("emulated" in w for w in report["warnings"])
    assert report["precision_hint"] is None  # it trained in what this CPU does best


@pytest.mark.parametrize("native", [True, False])
def test_fp32_the_default_says_when_this_cpu_would_train_faster_in_bf16(native, tiny_bert, data_dir, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert prune(tiny_bert, data_dir, tmp_path / "run") == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["precision"] == "fp32" and report["precision_why"] == "train.precision=fp32"
    out = capsys.readouterr().out
    if native:
        assert "train.precision=bf16" in report["precision_hint"] and "precision: this CPU multiplies bf16" in out
    else:
        assert report["precision_hint"] is None and "multiplies bf16" not in out


def test_several_processes_train_in_the_precision_chosen_once(tiny_bert, data_dir, tmp_path, monkeypatch):
    from auxprune import distributed

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    launched = []
    monkeypatch.setattr(distributed, "launch", lambda argv, count: launched.append(argv) or 0)
    assert prune(tiny_bert, data_dir, tmp_path / "run", "--processes", "2", "--set", "train.precision=auto") == 0
    assert launched[0][-2:] == ["--set", "train.precision=bf16"] and "--processes" not in launched[0]
    launched.clear()
    assert prune(tiny_bert, data_dir, tmp_path / "run2", "--processes", "2", "--set", "train.precision=fp32") == 0
    assert not any(a.startswith("train.precision=bf16") for a in launched[0])
