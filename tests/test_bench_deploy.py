"""The deployment benchmark (bench/deploy.py) end to end on a tiny run: every cell measured once, then skipped."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from conftest import save_pruned

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


def small_rte(data_dir: Path, folder: Path, rows: int = 24) -> Path:
    """The GLUE RTE files cut to their first `rows` examples: the same reader, a fraction of the evaluation time."""
    (folder / "glue" / "RTE").mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        lines = (data_dir / "glue" / "RTE" / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "glue" / "RTE" / name).write_text("".join(lines[:rows + 1]), encoding="utf-8")
    return folder


def test_deploy_bench_measures_each_model_and_runtime_once(tmp_path, tokenizer, data_dir, capsys):
    spec = importlib.util.spec_from_file_location("bench_deploy", ROOT / "bench" / "deploy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = tmp_path / "work" / "rte_s0.9_seed1"
    save_pruned(run, tokenizer, head_scale=30.0, task="glue/rte")
    out = tmp_path / "deploy.json"
    missing = ["--runs", str(tmp_path / "work" / "absent"), "--aligns", "--output", str(out)]
    with pytest.raises(SystemExit, match="absent: not a finished run"):
        script.main(missing)
    (run / "report.json").write_text(json.dumps({"status": "ok"}))
    argv = ["--runs", str(run), "--aligns", "--work", str(tmp_path / "work"), "--shapes", "1x8", "2x16",
            "--threads", "1", "--warmup", "0", "--iterations", "1", "--min-time", "0",
            "--data-dir", str(small_rte(data_dir, tmp_path / "data")),
            "--output", str(out)]
    assert script.main(argv) == 0
    records = json.loads(out.read_text())["records"]
    assert [(r["kind"], r["runtime"]) for r in records] == [
        (kind, runtime) for kind in ("pruned", "dense") for runtime in ("torch", "onnxruntime", "onnxruntime-int8")]
    for r in records:
        assert r["command"].startswith("python bench/deploy.py --runs ") and r["task"] == "glue/rte"
        assert r["dev_examples"] == 24
        assert set(r["latency_ms_p50"]) == {"1x8", "2x16"} and r["bytes"] > 0 and "accuracy" in r["metrics"]
    int8 = records[2]
    assert int8["check"]["inputs"].startswith("glue/rte dev") and int8["file"].endswith("int8.onnx")
    assert records[0]["teacher"] == "rte_s0.9_seed1/teacher" and records[3]["model"] == "rte_s0.9_seed1/teacher"
    capsys.readouterr()
    assert script.main(argv) == 0  # resumable: every cell is in the results file
    printed = capsys.readouterr().out
    assert printed.count("[skip]") == 6 and "[done]" not in printed
    assert "| rte_s0.9_seed1 | onnxruntime-int8 | accuracy" in printed and "smaller than model.safetensors" in printed


def test_align_runs_repeat_the_base_run_with_another_alignment(tmp_path, monkeypatch):
    """The align runs are the base run's own config plus prune.align (same teacher, seed, data); align 1 is the base."""
    import yaml

    spec = importlib.util.spec_from_file_location("bench_deploy", ROOT / "bench" / "deploy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    base = tmp_path / "stsb_bi_s0.9_baseline_seed1"
    base.mkdir()
    (base / "report.json").write_text(json.dumps({"status": "ok"}))
    (base / "config.yaml").write_text(yaml.safe_dump({"prune": {"align": 1}, "seed": 1}))
    calls = []

    def fake_run(command, check, cwd):
        calls.append(command)
        out = Path(command[command.index("--output") + 1])
        out.mkdir()
        (out / "report.json").write_text(json.dumps({"status": "ok"}))

    monkeypatch.setattr(script.subprocess, "run", fake_run)
    assert script.align_run(base, 1, None) == base and not calls
    out = script.align_run(base, 8, "data")
    assert out == tmp_path / "stsb_bi_s0.9_baseline_seed1_align8"
    [command] = calls
    assert command[command.index("--config") + 1].endswith("stsb_bi_s0.9_baseline_seed1/config.yaml")
    assert "prune.align=8" in command and command[-2:] == ["--data-dir", "data"]
    assert script.align_run(base, 8, None) == out and len(calls) == 1  # finished: not trained again
