"""The coupling benchmark's bookkeeping (bench/small_data_coupling.py): the command of a variant cell
(the recipe plus the variant's setting, the curve's own teacher when it has one) and the paired table.
No training here: run_prune is replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def coupling(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import learning_curve as curve
    import small_data_coupling as script

    monkeypatch.setattr(script, "RESULTS", tmp_path / "results" / "small_data_coupling.json")
    monkeypatch.setattr(script, "ROOT", tmp_path)  # run folders are named relative to it
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    monkeypatch.setattr(curve, "RESULTS", tmp_path / "results" / "learning_curve.json")
    monkeypatch.setattr(curve, "SMALL_DATA_RESULTS", tmp_path / "results" / "none.json")
    monkeypatch.setattr(curve, "BI_RESULTS", tmp_path / "results" / "none.json")
    monkeypatch.setattr(curve, "WORK", tmp_path / "curve_work")
    monkeypatch.setattr(curve, "BI_WORK", tmp_path / "bi_work")
    commands = []

    def fake_run_prune(out, command, threads, label=None, **_):
        commands.append(command)
        seed = int(command[command.index("--seed") + 1])
        report = {"data": {"train_examples": 100}, "sparsity": 0.9, "timing": {"total": 9.0},
                  "metrics": {"primary": "pearson", "teacher": {"pearson": 0.88}, "pruned": {"pearson": 0.80 + seed / 100},
                              "constant_baseline": {"pearson": 0.0}, "untrained": {"pearson": 0.87}},
                  "schedule": {}, "warnings": [], "head": {"head": "bi"}}
        return report, 5.0, True

    monkeypatch.setattr(script, "run_prune", fake_run_prune)
    script.commands = commands
    return script, curve


def test_a_variant_cell_is_the_recipe_plus_its_setting_on_the_curves_teacher(coupling, monkeypatch):
    script, curve = coupling
    teacher = curve.WORK / curve.cell_name("glue/stsb", 100, "transfer", 1) / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--seeds", "1", "2", "--variants", "aux_distill_3"])
    script.main()
    with_teacher, without = script.commands
    assert "transfer.aux_distill_weight=3" in with_teacher and "--aux" in with_teacher
    # the variant changes one setting of the curve's recipe, whose pinned weight comes first and is overridden
    assert with_teacher.index("transfer.aux_distill_weight=1") < with_teacher.index("transfer.aux_distill_weight=3")
    assert f"teacher.path={teacher}" in with_teacher
    # seed 2 has no curve cell to borrow a teacher (or a stage 1) from: it trains its own
    assert not any(part.startswith(("teacher.path=", "transfer.stage1_from=")) for part in without)
    saved = json.loads(script.RESULTS.read_text())
    assert [(r["seed"], r["variant"]) for r in saved["records"]] == [(1, "aux_distill_3"), (2, "aux_distill_3")]
    assert saved["records"][0]["variant_sets"] == ["--set", "transfer.aux_distill_weight=3"]


def test_the_table_pairs_each_variant_seed_with_the_curves_cells(coupling, monkeypatch):
    script, curve = coupling
    curve.RESULTS.parent.mkdir(parents=True, exist_ok=True)
    base = {"task": "glue/stsb", "examples": 100, "train_examples": 100, "head": "bi", "metric_name": "pearson",
            "teacher": 0.88, "constant": 0.0, "untrained": 0.87}
    curve.RESULTS.write_text(json.dumps({"records": [
        {**base, "seed": 1, "method": "baseline", "pruned": 0.78},
        {**base, "seed": 1, "method": "transfer", "pruned": 0.80},
        {**base, "seed": 2, "method": "baseline", "pruned": 0.79}]}))
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--seeds", "1", "2", "--variants", "aux_constant"])
    script.main()
    row = script.table().splitlines()[2]
    # variant pruned 0.81 and 0.82; over the baseline +3.0 and +3.0; over the recipe seed 1 only: +1.0
    assert row == ("| glue/stsb (pearson) | 100 | aux_constant | 1,2 | 88.0 ± 0.0 | 81.5 ± 0.7 | +3.0 (+3.0, +3.0) | "
                   "+1.0 (+1.0) |")


def test_at_1000_examples_the_variant_prunes_the_bi_encoder_benchmarks_teacher(coupling, monkeypatch):
    script, curve = coupling
    teacher = curve.BI_WORK / "mrpc_bi_s0.6_transfer_seed2" / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "model.safetensors").write_bytes(b"")
    assert script.curve_teacher("glue/mrpc", 1000, 2) == teacher
    assert script.curve_teacher("glue/mrpc", 1000, 3) is None  # no folder: the cell trains its own teacher
    alone = curve.BI_WORK / "mrpc_bi_s0.9_transfer_seed3" / "teacher"  # a 0.9 cell that trained its own teacher
    alone.mkdir(parents=True)
    (alone / "model.safetensors").write_bytes(b"")
    assert script.curve_teacher("glue/mrpc", 1000, 3) == alone
    copy = teacher.parent.with_name("mrpc_bi_s0.9_transfer_seed2") / "teacher"  # beside the 0.6 one: the 0.6 wins
    copy.mkdir(parents=True)
    (copy / "model.safetensors").write_bytes(b"")
    assert script.curve_teacher("glue/mrpc", 1000, 2) == teacher
    assert script.curve_teacher("glue/mrpc", 100, 2) is None  # other sizes borrow from the curve's own cells
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--tasks", "glue/mrpc", "--examples", "1000",
                                      "--seeds", "2", "--variants", "aux_distill_3"])
    script.main()
    (command,) = script.commands
    assert f"teacher.path={teacher}" in command and "1000" in command


def test_teacher_only_is_the_baselines_command_pruning_the_recipes_teacher(coupling, monkeypatch):
    script, curve = coupling
    teacher = curve.WORK / curve.cell_name("glue/rte", 4000, "transfer", 1) / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--tasks", "glue/rte", "--examples", "4000",
                                      "--seeds", "1", "--variants", "teacher_only"])
    script.main()
    (command,) = script.commands
    baseline = curve.base_command("glue/rte", 4000, 1, Path("work/rte_n4000_teacher_only_seed1"))
    assert command == [*baseline, "--set", f"teacher.path={teacher}"]  # no auxiliary data in pruning
    assert json.loads(script.RESULTS.read_text())["records"][0]["variant"] == "teacher_only"
    # without the recipe's teacher there is nothing to prune: one line, no run
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--tasks", "glue/rte", "--examples", "300",
                                      "--seeds", "1", "--variants", "teacher_only"])
    with pytest.raises(SystemExit, match="rte_n300_teacher_only_seed1: the variant prunes the transfer cell's teacher"):
        script.main()
    assert len(script.commands) == 1


def test_baseline_teacher_is_the_recipe_without_its_intermediate_epoch_on_the_baselines_teacher(coupling, monkeypatch):
    script, curve = coupling
    recipe = curve.BI_WORK / "rte_bi_s0.6_transfer_seed1" / "teacher"  # must not be the one taken
    teacher = curve.BI_WORK / "rte_bi_s0.9_baseline_seed1" / "teacher"  # a 0.9 baseline cell that trained its own
    for folder in (recipe, teacher):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"")
    for seed in (1, 2):  # stages 1 to start the recipe's teacher from: not this variant's
        stage1 = curve.BI_WORK / f"rte_bi_s0.6_transfer_seed{seed}" / "stage1"
        stage1.mkdir(parents=True, exist_ok=True)
        (stage1 / "meta.json").write_text("{}")
    assert script.curve_teacher("glue/rte", 1000, 1, "baseline") == teacher
    monkeypatch.setattr(sys, "argv", ["small_data_coupling.py", "--tasks", "glue/rte", "--examples", "1000",
                                      "--seeds", "1", "2", "--variants", "baseline_teacher"])
    script.main()
    with_teacher, without = script.commands
    recipe_command = [*script.aux_sets("glue/rte"), *script.TABLE_RECIPE, "--set", "transfer.teacher_aux_epochs=0"]
    first = curve.base_command("glue/rte", 1000, 1, Path("work/rte_n1000_baseline_teacher_seed1"))
    assert with_teacher == [*first, *recipe_command, "--set", f"teacher.path={teacher}"]
    # seed 2 has no baseline folder: it trains its teacher on the target only, without the recipe's stage 1
    second = curve.base_command("glue/rte", 1000, 2, Path("work/rte_n1000_baseline_teacher_seed2"))
    assert without == [*second, *recipe_command]
    saved = json.loads(script.RESULTS.read_text())["records"][0]
    assert (saved["variant"], saved["variant_sets"]) == ("baseline_teacher", ["--set", "transfer.teacher_aux_epochs=0"])
