"""The learning-curve benchmark's bookkeeping (bench/learning_curve.py): cells it skips, records it
writes, and the table it draws from them. No training here: run_cell is replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # it imports the transfer benchmark's pairs
    import learning_curve as script

    monkeypatch.setattr(script, "RESULTS", tmp_path / "results" / "learning_curve.json")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    ran = []

    def fake_run_cell(task, examples, seed, method, threads):
        ran.append((task, examples, seed, method))
        pruned = 0.60 + (0.05 if method == "transfer" else 0.0) + seed / 100
        report = {"data": {"train_examples": examples}, "sparsity": 0.9, "timing": {"total": 9.0},
                  "metrics": {"primary": "accuracy", "teacher": {"accuracy": 0.7}, "pruned": {"accuracy": pruned},
                              "constant_baseline": {"accuracy": 0.68}, "untrained": {"accuracy": 0.74}},
                  "schedule": {"steps_per_epoch": 32}, "warnings": ["w"]}
        return report, 5.0, f"auxprune prune --task {task}"

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    script.ran = ran
    return script


def invoke(script, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["learning_curve.py", *argv])
    script.main()


def test_recorded_cells_are_skipped_and_records_carry_their_command(runner, monkeypatch):
    invoke(runner, monkeypatch, "--tasks", "glue/mrpc", "--examples", "100", "--seeds", "1")
    assert runner.ran == [("glue/mrpc", 100, 1, "baseline"), ("glue/mrpc", 100, 1, "transfer")]
    runner.ran.clear()
    invoke(runner, monkeypatch, "--tasks", "glue/mrpc", "--examples", "100", "300", "--seeds", "1", "2",
           "--methods", "baseline")
    assert runner.ran == [("glue/mrpc", 100, 2, "baseline"), ("glue/mrpc", 300, 1, "baseline"),
                          ("glue/mrpc", 300, 2, "baseline")]
    saved = json.loads(runner.RESULTS.read_text())
    assert len(saved["records"]) == 5 and len(saved["commands"]) == 2
    first = saved["records"][0]
    assert (first["untrained"], first["constant"], first["warnings"]) == (0.74, 0.68, ["w"])
    assert first["command"].startswith("auxprune prune") and first["aux"] == []
    transfer = next(r for r in saved["records"] if r["method"] == "transfer")
    assert transfer["aux"] == ["aux/twitter_url_train.tsv"]


def test_table_pairs_transfer_with_baseline_by_seed(runner, monkeypatch):
    invoke(runner, monkeypatch, "--tasks", "glue/mrpc", "--examples", "100", "--seeds", "1", "2")
    records = json.loads(runner.RESULTS.read_text())["records"]
    records.append({**records[-1], "seed": 3})  # a transfer seed without its baseline: no gain for it
    row = runner.table(records).splitlines()[2]
    # baseline 61.0 and 62.0 (mean 61.5), transfer 66.0, 67.0 and 67.0; paired gains +5.0, +5.0
    assert row.startswith("| glue/mrpc (accuracy) | 100 | 1,2 | 74.0 | 68.0 | 70.0 ± 0.0 | 61.5 ± 0.7 |")
    assert "| +5.0 (2 seeds) | 88% |" in row
