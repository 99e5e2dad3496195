"""The limited-data pruning benchmark's bookkeeping (bench/prune_limited_data.py): which cells it
skips and what each record says produced it. No training here: run_cell is replaced."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def report(sparsity: float) -> dict:
    return {"status": "ok", "target_sparsity": sparsity, "sparsity": sparsity,
            "metrics": {"primary": "accuracy", "teacher": {"accuracy": 0.7}, "pruned": {"accuracy": 0.69},
                        "constant_baseline": {"accuracy": 0.5}, "retained": 0.99},
            "params": {}, "structure": {}, "speed": {}, "timing": {"total": 5.0, "teacher": 2.0}}


@pytest.fixture
def bench(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_prune_limited_data", ROOT / "bench" / "prune_limited_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "RESULTS", tmp_path / "results" / "prune.json")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    script.ran = []

    def fake_run_cell(task, sparsity, seed, examples, settings):
        script.ran.append((task, sparsity, seed, examples, tuple(settings)))
        return report(sparsity)

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    return script


def invoke(script, monkeypatch, *argv: str) -> list[dict]:
    monkeypatch.setattr(sys, "argv", ["prune_limited_data.py", *argv])
    script.main()
    return json.loads(script.RESULTS.read_text())["results"]


def test_recorded_cells_are_skipped_and_other_protocols_are_not(bench, monkeypatch):
    # A fresh clone has the committed results but no bench/work: recorded cells must not run again.
    invoke(bench, monkeypatch, "--tasks", "glue/mrpc", "--sparsities", "0.6", "0.9")
    assert bench.ran == [("glue/mrpc", 0.6, 1, 1000, ()), ("glue/mrpc", 0.9, 1, 1000, ())]
    bench.ran.clear()
    rows = invoke(bench, monkeypatch, "--tasks", "glue/mrpc", "--sparsities", "0.9", "--seed", "2")
    rows = invoke(bench, monkeypatch, "--tasks", "glue/mrpc", "--sparsities", "0.6", "0.9", "--set", "prune.epochs=2")
    rows = invoke(bench, monkeypatch, "--tasks", "glue/mrpc", "--sparsities", "0.6", "0.9")  # all recorded
    assert bench.ran == [("glue/mrpc", 0.9, 2, 1000, ()), ("glue/mrpc", 0.6, 1, 1000, ("prune.epochs=2",)),
                         ("glue/mrpc", 0.9, 1, 1000, ("prune.epochs=2",))]
    assert len(rows) == 5  # nothing overwritten by a cell of another seed or setting
    by_cell = {(r["target_sparsity"], r["seed"], tuple(r["settings"])): r["command"] for r in rows}
    assert by_cell[(0.9, 2, ())].endswith("--sparsities 0.9 --seed 2")
    assert by_cell[(0.6, 1, ("prune.epochs=2",))].endswith("--set prune.epochs=2")
    assert by_cell[(0.6, 1, ())] == "python bench/prune_limited_data.py --tasks glue/mrpc --sparsities 0.6 0.9"


def test_rerun_runs_recorded_cells_again(bench, monkeypatch):
    invoke(bench, monkeypatch, "--tasks", "glue/rte", "--sparsities", "0.9")
    invoke(bench, monkeypatch, "--tasks", "glue/rte", "--sparsities", "0.9", "--rerun")
    assert bench.ran == [("glue/rte", 0.9, 1, 1000, ())] * 2


def test_a_non_default_protocol_gets_its_own_run_folders(bench):
    # Otherwise a finished default cell (or its teacher) would be read back for a run with other settings.
    assert bench.variant(1000, []) == ""  # the committed runs keep their folder names
    names = {bench.variant(1000, ["prune.epochs=2"]), bench.variant(1000, ["prune.epochs=3"]), bench.variant(500, [])}
    assert len(names) == 3 and "" not in names
