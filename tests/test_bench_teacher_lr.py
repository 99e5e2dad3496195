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

    def fake_run_cell(task, examples, lr, seed, threads, kind="teacher"):
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
    assert [script.key(r)[:4] for r in saved["records"]] == [("glue/mrpc", 300, 1, 2e-5), ("glue/mrpc", 300, 1, 1e-4),
                                                             ("glue/rte", 300, 1, 2e-5)]
    assert {r["kind"] for r in saved["records"]} == {"teacher"}
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


def test_a_pruned_cell_is_the_curves_whole_baseline_cell_with_only_the_rate_changed(script, monkeypatch):
    seen = []
    monkeypatch.setattr(script, "run_prune", lambda out, command, threads, label: (seen.append(command) or {}, 2.0, True))
    _, _, command = script.run_cell("glue/rte", 100, 2e-5, 3, 1, kind="pruned")
    curve_command = script.curve.base_command("glue/rte", 100, 3, Path("X"))
    assert seen[0] == [*curve_command[:curve_command.index("X")], "bench/work/teacher_lr/rte_n100_lr2e-05_pruned_seed3",
                       *curve_command[curve_command.index("X") + 1:], "--set", "teacher.lr=2e-05"]
    assert "prune.epochs=0.05" not in command and "--sparsity 0.9" in command


def test_pruned_cells_are_recorded_apart_and_tabled_against_the_curves_cell(script, monkeypatch, capsys):
    def fake_run_cell(task, examples, lr, seed, threads, kind="teacher"):
        pruned = kind == "pruned"
        report = {"data": {"train_examples": examples}, "head": {"head": "bi"}, "timing": {"teacher": 3.0},
                  "sparsity": 0.905 if pruned else 0.1,
                  "schedule": {"phases": {"teacher": {"steps": 128}, "prune": {"steps": 192 if pruned else 2}}},
                  "metrics": {"primary": "accuracy", "teacher": {"accuracy": 0.762 if pruned else 0.761},
                              "pruned": {"accuracy": 0.703 if pruned else 0.5},
                              "untrained": {"accuracy": 0.743}, "constant_baseline": {"accuracy": 0.684}}}
        return report, 4.0, f"auxprune prune {kind}"

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    monkeypatch.setattr(script, "curve_teachers", lambda: {("glue/mrpc", 100, 1): {"teacher": 0.708, "pruned": 0.696}})
    for extra in (["--pruned"], []):  # the same task, size, seed and rate as a whole cell and as a teacher-only run
        monkeypatch.setattr(sys, "argv", ["teacher_lr.py", "--tasks", "glue/mrpc", "--examples", "100", *extra])
        script.main()
    records = json.loads(script.RESULTS.read_text())["records"]
    assert [(r["kind"], r.get("pruned"), r.get("prune_steps")) for r in records] == [("pruned", 0.703, 192),
                                                                                     ("teacher", None, None)]
    out = capsys.readouterr().out
    assert "| glue/mrpc | 100 | 1 | 74.3 | 68.4 | 70.8 | 76.1 | +5.3 |" in out  # the teacher-only table: its run only
    assert "| glue/mrpc | 100 | 1 | 2e-05 | 74.3 | 70.8 | 76.2 | 69.6 | 70.3 | +5.4 | +0.7 |" in out
    assert "teacher +5.4, pruned model +0.7 on the mean of 1 cells (pruned model higher in 1, lower in 0)" in out
