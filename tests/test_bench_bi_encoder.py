"""The bi-encoder benchmark's bookkeeping (bench/bi_encoder.py): cell order (0.6 trains the teacher 0.9
reuses), skipped cells, records and the table beside the cross-encoder. No training: run_cell is replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bi_encoder as script

    monkeypatch.setattr(script, "RESULTS", tmp_path / "results" / "bi_encoder.json")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    cross = tmp_path / "cross.json"
    cross.write_text(json.dumps({"records": [
        {"target": "glue/stsb", "sparsity": 0.6, "method": "baseline", "seed": s, "teacher_metric": 0.82,
         "metric": 0.80 + s / 100, "metric_name": "pearson"} for s in (1, 2, 3, 4)]}))
    monkeypatch.setattr(script, "CROSS_RESULTS", cross)
    ran = []

    def fake_run_cell(task, sparsity, method, seed, threads):
        ran.append((task, sparsity, method, seed))
        report = {"sparsity": sparsity, "timing": {"total": 9.0}, "head": {"head": "bi"}, "warnings": [],
                  "config": {"teacher": {"path": None if sparsity == 0.6 else "x"}},
                  "metrics": {"primary": "pearson", "teacher": {"pearson": 0.89}, "pruned": {"pearson": 0.9 - sparsity / 10},
                              "untrained": {"pearson": 0.87}}}
        return report, 5.0, f"auxprune prune --task {task} --sparsity {sparsity}"

    monkeypatch.setattr(script, "run_cell", fake_run_cell)
    script.ran = ran
    return script


def test_cells_run_in_order_skip_when_recorded_and_tabulate_beside_the_cross_encoder(runner, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bi_encoder.py", "--tasks", "glue/stsb", "--seeds", "1", "--methods", "baseline"])
    runner.main()
    assert runner.ran == [("glue/stsb", 0.6, "baseline", 1), ("glue/stsb", 0.9, "baseline", 1)]
    runner.main()  # everything recorded: nothing runs again
    assert len(runner.ran) == 2
    results = json.loads(runner.RESULTS.read_text())
    assert [r["teacher_from"] for r in results["records"]] == ["trained in this run", "teacher.path"]
    assert results["commands"] == ["python bench/bi_encoder.py --tasks glue/stsb --seeds 1 --methods baseline"]
    monkeypatch.setattr(sys, "argv", ["bi_encoder.py", "--table"])
    runner.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| glue/stsb")]
    assert len(rows) == 2
    cells = [c.strip() for c in rows[0].split("|")]
    # untrained, cross teacher (seeds 1-3 only), cross pruned, cross + transfer, bi teacher, bi pruned
    assert cells[3:9] == ["87.0 (1)", "82.0 ± 0.0 (3)", "82.0 ± 1.0 (3)", "", "89.0 (1)", "84.0 (1)"]


def test_a_transfer_cell_that_trains_its_teacher_starts_from_the_seeds_stage1_when_one_exists(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bi_encoder as script

    monkeypatch.setattr(script, "WORK", tmp_path / "bi")
    monkeypatch.setattr(script.curve, "BI_WORK", tmp_path / "bi")
    monkeypatch.setattr(script.curve, "WORK", tmp_path / "curve")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script.curve, "ROOT", tmp_path)
    import results_file  # names folders relative to the repository (results_file.display)

    monkeypatch.setattr(results_file, "ROOT", tmp_path)
    commands = []
    monkeypatch.setattr(script, "run_prune", lambda out, command, threads, name: (commands.append(command) or {}, 1.0, None))

    def flags(task, sparsity, method, seed=1) -> list[str]:
        commands.clear()
        script.run_cell(task, sparsity, method, seed, 1)
        return [c for c in commands[0] if c.startswith(("transfer.stage1_from=", "teacher.path="))]

    assert flags("glue/rte", 0.9, "transfer") == []  # nothing to start from: the cell trains stage 1 itself
    stage1 = tmp_path / "curve" / "rte_default_n100_transfer_seed1" / "stage1"
    stage1.mkdir(parents=True)
    (stage1 / "meta.json").write_text('{"phase": "stage1"}')
    assert flags("glue/rte", 0.9, "transfer") == ["transfer.stage1_from=curve/rte_default_n100_transfer_seed1"]
    assert flags("glue/rte", 0.9, "transfer", seed=2) == []  # another seed's stage 1: never
    assert flags("glue/rte", 0.9, "baseline") == []
    teacher = tmp_path / "bi" / "rte_bi_s0.6_transfer_seed1" / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "model.safetensors").write_bytes(b"")
    assert flags("glue/rte", 0.9, "transfer") == ["teacher.path=bi/rte_bi_s0.6_transfer_seed1/teacher"]  # no stage 1 needed
