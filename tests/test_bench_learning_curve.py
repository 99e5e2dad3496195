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
    # the other benchmarks' files it reads cells from: none unless a test writes them
    monkeypatch.setattr(script, "SMALL_DATA_RESULTS", tmp_path / "results" / "small_data_default.json")
    monkeypatch.setattr(script, "BI_RESULTS", tmp_path / "results" / "bi_encoder.json")
    monkeypatch.setattr(script, "TRANSFER_RESULTS", tmp_path / "results" / "transfer_limited_data.json")
    monkeypatch.setattr(script, "PLOT", tmp_path / "results" / "learning_curve.png")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    ran = []
    bars_computed = []

    def fake_bars_for(task, examples, seed):
        bars_computed.append((task, examples, seed))
        return {"constant": 0.5, "untrained": 0.9}

    monkeypatch.setattr(script, "bars_for", fake_bars_for)
    script.bars_computed = bars_computed

    def fake_run_cell(task, examples, seed, method, threads):
        ran.append((task, examples, seed, method))
        pruned = 0.60 + (0.05 if method == "transfer" else 0.0) + seed / 100
        metric = "pearson" if task == "glue/stsb" else "accuracy"
        report = {"data": {"train_examples": examples}, "sparsity": 0.9, "timing": {"total": 9.0},
                  "metrics": {"primary": metric, "teacher": {metric: 0.7}, "pruned": {metric: pruned},
                              "constant_baseline": {metric: 0.68}, "untrained": {metric: 0.74}},
                  "schedule": {"steps_per_epoch": 32}, "warnings": ["w"], "head": {"head": "bi", "why": "auto"}}
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
    assert first["command"].startswith("auxprune prune") and first["aux"] == [] and first["head"] == "bi"
    transfer = next(r for r in saved["records"] if r["method"] == "transfer")
    assert transfer["aux"] == ["aux/twitter_url_train.tsv"]


def test_table_pairs_transfer_with_baseline_by_seed(runner, monkeypatch):
    invoke(runner, monkeypatch, "--tasks", "glue/mrpc", "--examples", "100", "--seeds", "1", "2")
    records = json.loads(runner.RESULTS.read_text())["records"]
    records.append({**records[-1], "seed": 3})  # a transfer seed without its baseline: no gain for it
    row = runner.table(records).splitlines()[2]
    # baseline 61.0 and 62.0 (mean 61.5), transfer 66.0, 67.0 and 67.0; paired gains +5.0, +5.0
    assert row.startswith("| glue/mrpc (accuracy) | 100 | 2 (1,2 learning_curve) | 3 (1,2,3 learning_curve) | 74.0 "
                          "| 68.0 | 70.0 ± 0.0 | 61.5 ± 0.7 |")
    assert "| +5.0 (2 seeds) | 88% |" in row


def small_data_record(task, examples, seed, teacher, pruned, head="bi"):
    return {"task": task, "examples": examples, "train_examples": examples, "seed": seed, "head": head,
            "metric_name": "pearson", "teacher": teacher, "pruned": pruned, "untrained": 0.87, "constant": 0.0,
            "measured_sparsity": 0.905, "command": f"auxprune prune --task {task} --max-train-examples {examples}"}


def bi_record(task, sparsity, method, seed, teacher, pruned):
    return {"task": task, "sparsity": sparsity, "method": method, "seed": seed,
            "head": {"head": "bi", "why": "model.head=bi"}, "metric_name": "pearson", "teacher": teacher,
            "pruned": pruned, "untrained": 0.87, "measured_sparsity": sparsity, "command": "auxprune prune ..."}


def cross_record(task, examples, seed, method, teacher, pruned):
    """An earlier cell measured with the cross-encoder, as the results file marks it."""
    return {"task": task, "examples": examples, "train_examples": examples, "seed": seed, "method": method,
            "head": "cross", "aux": [], "metric_name": "pearson", "teacher": teacher, "pruned": pruned,
            "constant": 0.0, "untrained": 0.87, "command": "auxprune prune ..."}


@pytest.fixture
def sources(runner):
    """Fake result files: small-data default cells, bi-encoder cells and one cross-encoder record here."""
    results = runner.RESULTS.parent
    results.mkdir(parents=True, exist_ok=True)
    (results / "small_data_default.json").write_text(json.dumps({"records": [
        small_data_record("glue/stsb", 300, 1, 0.88, 0.81), small_data_record("glue/stsb", 100, 1, 0.87, 0.80)]}))
    (results / "bi_encoder.json").write_text(json.dumps({"records": [
        bi_record("glue/stsb", 0.9, "baseline", 1, 0.89, 0.80), bi_record("glue/stsb", 0.9, "baseline", 2, 0.88, 0.82),
        bi_record("glue/stsb", 0.9, "transfer", 1, 0.89, 0.83),
        bi_record("glue/stsb", 0.6, "baseline", 3, 0.88, 0.86)]}))  # 0.6: not a point of the curve
    runner.RESULTS.write_text(json.dumps({"records": [cross_record("glue/stsb", 300, 1, "baseline", 0.72, 0.67),
                                                      cross_record("glue/stsb", 300, 2, "baseline", 0.70, 0.65)]}))
    return runner


def test_cells_in_the_small_data_and_bi_encoder_files_are_not_run(sources, monkeypatch):
    invoke(sources, monkeypatch, "--tasks", "glue/stsb", "--examples", "100", "300", "1000", "4000",
           "--seeds", "1", "2", "3", "--methods", "baseline", "transfer")
    ran = sources.ran
    # in small_data_default.json (baseline, seed 1 at 100 and 300): not run
    assert ("glue/stsb", 300, 1, "baseline") not in ran and ("glue/stsb", 100, 1, "baseline") not in ran
    # a cross-encoder record does not make the default-head cell done
    assert ("glue/stsb", 300, 2, "baseline") in ran
    # 1,000 examples: bi_encoder.py's cells, never run here (in the file or not)
    assert not [c for c in ran if c[1] == 1000]
    # 4,000: seed 1 only, as the issue asks
    assert [c for c in ran if c[1] == 4000] == [("glue/stsb", 4000, 1, "baseline"), ("glue/stsb", 4000, 1, "transfer")]
    assert len(ran) == 2 * 3 * 2 - 2 + 2  # 100 and 300: 3 seeds x 2 methods less the two small-data cells; 4,000: 2
    saved = json.loads(sources.RESULTS.read_text())
    heads = sorted(r["head"] for r in saved["records"] if (r["task"], r["examples"], r["seed"], r["method"])
                   == ("glue/stsb", 300, 2, "baseline"))
    assert heads == ["bi", "cross"]  # the new cell is added beside the cross-encoder one, not over it
    sources.ran.clear()
    invoke(sources, monkeypatch, "--tasks", "glue/stsb", "--examples", "100", "300", "4000", "--seeds", "1", "2", "3")
    assert sources.ran == []  # everything measured, here or elsewhere


def test_merged_rows_name_their_source_and_leave_cross_out_of_the_curve(sources, monkeypatch, capsys):
    invoke(sources, monkeypatch, "--tasks", "glue/stsb", "--examples", "300", "--seeds", "2", "--methods", "baseline")
    capsys.readouterr()
    sources.bars_computed.clear()
    bars = {}
    rows = {(r["examples"], r["seed"], r["method"], r["head"]): r for r in sources.merged_rows(bars)}
    assert rows[(300, 1, "baseline", "bi")]["source"].endswith("small_data_default.json")
    assert rows[(1000, 2, "baseline", "bi")]["source"].endswith("bi_encoder.json")
    assert rows[(1000, 1, "transfer", "bi")]["source"].endswith("bi_encoder.json")
    assert rows[(300, 2, "baseline", "bi")]["source"].endswith("learning_curve.json")
    assert rows[(300, 1, "baseline", "cross")]["source"].endswith("learning_curve.json")
    assert (1000, 3, "baseline", "bi") not in rows  # bi_encoder.json's 0.6 cell
    # the bi records lack the constant predictor: computed once per task and seed, then kept
    assert rows[(1000, 1, "baseline", "bi")]["constant"] == 0.5 and rows[(1000, 1, "baseline", "bi")]["untrained"] == 0.87
    assert sorted(sources.bars_computed) == [("glue/stsb", 1000, 1), ("glue/stsb", 1000, 2)]
    sources.bars_computed.clear()

    invoke(sources, monkeypatch, "--table")
    out = capsys.readouterr().out
    curve, history = out.split("History, not in the curve")
    line = lambda text, n: next(x for x in text.splitlines() if x.startswith("| glue/stsb (") and f") | {n:,} |" in x)
    # STS-B 300 in the curve: seed 1 from small_data_default (pruned 0.81), seed 2 run here (0.62, the fake runner);
    # the cross-encoder records (0.67, 0.65) are not in the mean
    assert line(curve, 300).startswith("| glue/stsb (pearson) | 300 | 2 (1 small_data_default; 2 learning_curve) |  |")
    assert "| 71.5 ± 13.4 |" in line(curve, 300)
    assert line(curve, 1000).startswith("| glue/stsb (pearson) | 1,000 | 2 (1,2 bi_encoder) | 1 (1 bi_encoder) | 87.0 | 50.0 |")
    assert "| +3.0 (1 seed) |" in line(curve, 1000)
    assert line(curve, 100).startswith("| glue/stsb (pearson) | 100 | 1 (1 small_data_default) |")
    assert "cross" not in curve.split("\n", 1)[1] and "Sources: bi_encoder = " in curve
    assert line(history, 300).startswith("| glue/stsb (pearson) | 300 | 2 (1,2 learning_curve) |  |")
    assert "| 66.0 ± 1.4 |" in line(history, 300)  # the cross cells' own mean, apart
    assert sources.PLOT.is_file()
    assert sources.bars_computed == []  # the run above kept them in the results file
    assert set(json.loads(sources.RESULTS.read_text())["bars_at_1000"]) == {"glue/stsb 1", "glue/stsb 2"}


def test_transfer_cells_of_a_task_and_seed_share_one_stage1(runner, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "BI_WORK", tmp_path / "bi")
    out = runner.WORK / runner.cell_name("glue/mrpc", 100, "transfer", 2)

    def finished(folder: Path) -> Path:
        (folder / "stage1").mkdir(parents=True)
        (folder / "stage1" / "meta.json").write_text('{"phase": "stage1"}')
        return folder

    assert runner.stage1_source("glue/mrpc", 2, out) is None  # the first cell trains it
    other_size = finished(runner.WORK / runner.cell_name("glue/mrpc", 300, "transfer", 2))
    finished(runner.WORK / runner.cell_name("glue/mrpc", 300, "transfer", 1))  # another seed: never
    finished(runner.WORK / runner.cell_name("glue/stsb", 300, "transfer", 2))  # another task: never
    assert runner.stage1_source("glue/mrpc", 2, out) == other_size
    bi_cell = tmp_path / "bi" / "mrpc_bi_s0.6_transfer_seed2"
    (bi_cell / "checkpoints" / "phases" / "stage1").mkdir(parents=True)  # stopped after its stage 1
    (bi_cell / "checkpoints" / "phases" / "stage1" / "meta.json").write_text('{"phase": "stage1"}')
    assert runner.stage1_source("glue/mrpc", 2, out) == bi_cell  # the 1,000-example cell's comes first
    # a cell already started keeps the source its config names (or none), whatever exists now
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(f"transfer:\n  stage1_from: {other_size}\n")  # absolute: ROOT / it is itself
    assert runner.stage1_source("glue/mrpc", 2, out) == other_size
    (out / "config.yaml").write_text("transfer:\n  aux: []\n")
    assert runner.stage1_source("glue/mrpc", 2, out) is None


def test_gains_table_lists_each_seeds_paired_gain_per_size(runner, monkeypatch):
    invoke(runner, monkeypatch, "--tasks", "glue/mrpc", "glue/stsb", "--examples", "100", "300", "--seeds", "1", "2")
    records = json.loads(runner.RESULTS.read_text())["records"]
    records = [r for r in records if not (r["task"] == "glue/stsb" and r["examples"] == 300 and r["seed"] == 2)]
    records.append({**records[-1], "examples": 300, "seed": 3, "method": "transfer"})  # no baseline: not paired
    assert runner.paired_gains(records, "glue/mrpc", 100) == pytest.approx({1: 0.05, 2: 0.05})
    header, _, mrpc, stsb = runner.gains_table(records).splitlines()
    assert header == "| task (pruned 0.9: transfer minus baseline, same seed) | 100 | 300 |"
    assert mrpc == "| glue/mrpc (accuracy) | +5.0, +5.0 (seeds 1,2; mean +5.0) | +5.0, +5.0 (seeds 1,2; mean +5.0) |"
    assert stsb == "| glue/stsb (pearson x100) | +5.0, +5.0 (seeds 1,2; mean +5.0) | +5.0 (seed 1) |"


def test_transfer_cells_pin_the_recipe_their_table_was_measured_in(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import learning_curve as script

    monkeypatch.setattr(script, "WORK", ROOT / "bench" / "work" / "no_such_folder")  # no stage 1 to borrow
    monkeypatch.setattr(script, "BI_WORK", ROOT / "bench" / "work" / "no_such_folder")
    monkeypatch.setattr(script, "run_prune", lambda out, command, threads, label: ({}, 1.0, True))
    _, _, transfer = script.run_cell("glue/mrpc", 100, 1, "transfer", 1)
    _, _, baseline = script.run_cell("glue/mrpc", 100, 1, "baseline", 1)
    # the weight the curve's transfer cells ran with, whatever the default becomes
    assert "--set transfer.aux_distill_weight=1" in transfer and "--aux" in transfer
    assert "aux_distill_weight" not in baseline and "prune.epochs=6" in baseline
