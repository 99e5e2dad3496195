"""bench/teacher_lr.py's bookkeeping: the teacher-only command, records per (task, size, seed, rate) and the
table against the learning curve's own teacher. No training: run_prune / run_cell are replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import teacher_lr

    monkeypatch.setattr(teacher_lr, "RESULTS", tmp_path / "teacher_lr.json")
    return teacher_lr


def test_a_cell_is_the_curves_baseline_teacher_at_another_rate_with_pruning_cut_to_a_token(script, monkeypatch):
    seen = []
    monkeypatch.setattr(script, "run_prune", lambda out, command, threads, label: (seen.append(command) or {}, 2.0, True))
    _, _, command = script.run_cell("glue/mrpc", 300, 2e-5, 2, 1)
    assert command.startswith("auxprune prune --task glue/mrpc --max-train-examples 300 --seed 2 --output "
                              "bench/work/teacher_lr/mrpc_n300_lr2e-05_seed2 --overwrite")
    flags = seen[0]
    assert "teacher.lr=2e-05" in flags and "train.precision=fp32" in flags and "model.head" not in command
    assert flags[flags.index("--sparsity") + 1] == "0.1" and "prune.epochs=0.05" in flags


def test_records_and_table_against_the_curves_teacher(script, monkeypatch, capsys):
    teachers = {(("glue/mrpc", 300, 1), 2e-5): 0.767, (("glue/mrpc", 300, 1), 1e-4): 0.728,
                (("glue/rte", 300, 1), 2e-5): 0.599}

    def fake_run_cell(task, examples, lr, seed, threads):
        report = {"data": {"train_examples": examples}, "head": {"head": "bi"}, "timing": {"teacher": 3.0},
                  "schedule": {"phases": {"teacher": {"steps": 128}}},
                  "metrics": {"primary": "accuracy", "teacher": {"accuracy": teachers[((task, examples, seed), lr)]},
                              "untrained": {"accuracy": 0.745}, "constant_baseline": {"accuracy": 0.684}}}
        return report, 4.0, f"auxprune prune --task {task} --seed {seed} lr {lr}"

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    monkeypatch.setattr(script, "curve_teachers", lambda: {("glue/mrpc", 300, 1): {"teacher": 0.728},
                                                           ("glue/rte", 300, 1): {"teacher": 0.592}})
    monkeypatch.setattr(sys, "argv", ["teacher_lr.py", "--tasks", "glue/mrpc", "glue/rte", "--examples", "300",
                                      "--lrs", "2e-5"])
    script.main()
    monkeypatch.setattr(sys, "argv", ["teacher_lr.py", "--tasks", "glue/mrpc", "--examples", "300", "--lrs", "1e-4"])
    script.main()
    saved = json.loads(script.RESULTS.read_text())
    assert [script.key(r) for r in saved["records"]] == [("glue/mrpc", 300, 1, 2e-5), ("glue/mrpc", 300, 1, 1e-4),
                                                         ("glue/rte", 300, 1, 2e-5)]
    assert saved["records"][0]["teacher_steps"] == 128 and len(saved["commands"]) == 2
    monkeypatch.setattr(sys, "argv", ["teacher_lr.py", "--table"])
    capsys.readouterr()
    script.main()
    out = capsys.readouterr().out
    assert "| glue/mrpc | 300 | 1 | 74.5 | 68.4 | 72.8 (rerun 72.8) | 76.7 | +3.9 |" in out
    assert "| glue/rte | 300 | 1 | 74.5 | 68.4 | 59.2 | 59.9 | +0.7 |" in out
    assert "mean +2.3 over 2 cells, higher in 2" in out


def test_the_reference_is_the_curves_baseline_teacher_of_the_default_head(script, monkeypatch, tmp_path):
    curve = script.curve
    monkeypatch.setattr(curve, "RESULTS", tmp_path / "curve.json")
    monkeypatch.setattr(curve, "SMALL_DATA_RESULTS", tmp_path / "none.json")
    monkeypatch.setattr(curve, "BI_RESULTS", tmp_path / "none.json")
    rows = [{"task": "glue/mrpc", "examples": 300, "seed": 1, "method": m, "head": h, "teacher": t}
            for m, h, t in (("baseline", "bi", 0.728), ("transfer", "bi", 0.75), ("baseline", "cross", 0.6))]
    (tmp_path / "curve.json").write_text(json.dumps({"records": rows}))
    assert {k: v["teacher"] for k, v in script.curve_teachers().items()} == {("glue/mrpc", 300, 1): 0.728}
