"""bench/small_data_default.py's bookkeeping: one record per cell, with its command, read from the
run's report. No training here: run_cell is replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cells_become_records_with_their_commands(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import small_data_default as script

    monkeypatch.setattr(script, "RESULTS", tmp_path / "small.json")

    def fake_run_cell(task, examples, seed, threads):
        report = {"data": {"train_examples": examples}, "head": {"head": "bi"}, "sparsity": 0.9, "warnings": ["w"],
                  "timing": {"total": 1.0},
                  "metrics": {"primary": "pearson", "teacher": {"pearson": 0.88}, "pruned": {"pearson": 0.81},
                              "untrained": {"pearson": 0.87}, "constant_baseline": {"pearson": 0.0}, "retained": 0.92}}
        return report, f"auxprune prune --task {task} --max-train-examples {examples} --seed {seed}"

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    for argv in (["--cells", "glue/stsb:300", "glue/mrpc:100"], ["--cells", "glue/stsb:300", "--seeds", "2"]):
        monkeypatch.setattr(sys, "argv", ["small_data_default.py", *argv])
        script.main()
    saved = json.loads((tmp_path / "small.json").read_text())
    assert [(r["task"], r["examples"], r["seed"]) for r in saved["records"]] == [
        ("glue/mrpc", 100, 1), ("glue/stsb", 300, 1), ("glue/stsb", 300, 2)]
    first = saved["records"][1]
    assert (first["head"], first["pruned"], first["untrained"], first["retained"]) == ("bi", 0.81, 0.87, 0.92)
    assert first["command"] == "auxprune prune --task glue/stsb --max-train-examples 300 --seed 1"
    assert len(saved["commands"]) == 2 and saved["commands"][0].startswith("python bench/small_data_default.py")
