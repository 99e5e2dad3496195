"""The size-matched benchmark's bookkeeping (bench/size_matched.py): cell order and commands (MPNet-base with
--size-of minilm and the shortening, auxiliary flags only for the --aux cells), skipped cells, MiniLM-L6 rows
read from bi_encoder.json, latency records and the table with its target lines. No training: the cell's
subprocess is replaced by a fake that writes a report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]


def fake_report(argv: list[str]) -> dict:
    mpnet = "mpnet-base" in argv
    transfer = "--aux" in argv
    task = argv[argv.index("--task") + 1]
    primary = "pearson" if task == "glue/stsb" else "accuracy"
    if mpnet:
        teacher, pruned, untrained = (0.84, 0.80, 0.70) if transfer else (0.82, 0.76, 0.70)
        params = {"encoder_total": 84_934_656, "encoder_kept": 10_600_000, "embeddings": 24_000_000,
                  "total": 34_600_000, "dense_total": 109_486_080}
    else:
        teacher, pruned, untrained = (0.74, 0.70, 0.60) if transfer else (0.72, 0.68, 0.60)
        params = {"encoder_total": 10_646_784, "encoder_kept": 4_200_000, "embeddings": 11_918_592,
                  "total": 16_100_000, "dense_total": 22_565_376}
    return {"status": "ok", "sparsity": 0.875, "timing": {"total": 9.0}, "warnings": [], "params": params,
            "head": {"head": "bi", "why": "a sentence-embedding model on a sentence-pair task"},
            "target": {"size_of": "minilm", "requested_params": 10_646_784} if mpnet else None,
            "metrics": {"primary": primary, "teacher": {primary: teacher}, "pruned": {primary: pruned},
                        "untrained": {primary: untrained}}}


def print_table(script, monkeypatch, capsys) -> str:
    """What `size_matched.py --table` prints."""
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--table"])
    capsys.readouterr()
    script.main()
    return capsys.readouterr().out


def table_rows(out: str, task: str) -> dict[str, list[str]]:
    """The task's table rows by their label, each as its cells."""
    return {cells[2]: cells for cells in ([c.strip() for c in line.split("|")] for line in out.splitlines()
                                          if line.startswith(f"| {task}"))}


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import size_matched as script

    monkeypatch.setattr(script, "RESULTS", tmp_path / "results" / "size_matched.json")
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    monkeypatch.setattr(script, "BI_RESULTS", tmp_path / "bi_encoder.json")
    monkeypatch.setattr(script, "BI_WORK", tmp_path / "bi_work")
    monkeypatch.setattr(script, "RECIPE_RESULTS", tmp_path / "bi_recipe.json")
    monkeypatch.setattr(script.peer, "RESULTS", tmp_path / "peer_sentence_transformers.json")
    ran = []

    def fake_run(argv, check, env, cwd):
        assert argv[1:3] == ["-m", "auxprune.cli"]
        ran.append(argv[3:])
        out = Path(cwd) / argv[argv.index("--output") + 1]
        for folder in ("teacher", "model"):
            (out / folder).mkdir(parents=True)
            (out / folder / "config.json").write_text("{}")
        (out / "report.json").write_text(json.dumps(fake_report(argv)))

    import prune_cell  # where the script's cells run: bench/prune_cell.py

    monkeypatch.setattr(prune_cell, "subprocess", SimpleNamespace(run=fake_run))  # the cells' calls only
    script.ran = ran
    return script


def bi_encoder_results(path: Path, tasks=("glue/mrpc",), seeds=(1,)) -> None:
    """bi_encoder.json records: MiniLM-L6 at 0.6 and 0.9, baseline and transfer."""
    path.write_text(json.dumps({"records": [
        {"task": t, "sparsity": s, "method": m, "seed": seed, "metric_name": "accuracy",
         "teacher": 0.79 if m == "baseline" else 0.78, "pruned": 0.76, "untrained": 0.75,
         "head": {"head": "bi"}, "command": f"auxprune prune --task {t} --sparsity {s} ({m})"}
        for t in tasks for s in (0.6, 0.9) for m in ("baseline", "transfer") for seed in seeds]}))


def test_cells_commands_order_and_skip(script, monkeypatch):
    bi_encoder_results(script.BI_RESULTS)  # MRPC's MiniLM-L6 cells exist there, RTE's do not
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/rte", "glue/mrpc", "--seeds", "1"])
    script.main()
    names = [Path(argv[argv.index("--output") + 1]).name for argv in script.ran]
    assert names == ["rte_mpnet_baseline_bf16_seed1", "rte_mpnet_transfer_bf16_seed1", "rte_minilm_baseline_seed1",
                     "rte_minilm_transfer_seed1", "mrpc_mpnet_baseline_bf16_seed1", "mrpc_mpnet_transfer_bf16_seed1"]
    by_name = dict(zip(names, script.ran))
    mpnet, mpnet_aux = by_name["rte_mpnet_baseline_bf16_seed1"], by_name["rte_mpnet_transfer_bf16_seed1"]
    for argv in (mpnet, mpnet_aux):
        assert argv[argv.index("--model") + 1] == "mpnet-base"
        assert argv[argv.index("--size-of") + 1] == "minilm" and "--sparsity" not in argv
        assert argv[argv.index("--max-train-examples") + 1] == "1000"
        assert "model.max_seq_len=64" in argv
        # MPNet trains in bf16, and nothing later on the line sets the precision back
        assert [a for a in argv if a.startswith("train.precision=")] == ["train.precision=bf16"]
    assert "--aux" not in mpnet
    # the transfer recipe's RTE sources, 5,000 examples in all, split evenly
    assert [mpnet_aux[i + 1] for i, a in enumerate(mpnet_aux) if a == "--aux"] == script.AUX["glue/rte"]
    assert [a for a in mpnet_aux if ".max_examples=" in a] == [f"transfer.aux.{i}.max_examples=1666" for i in range(3)]
    minilm, minilm_aux = by_name["rte_minilm_baseline_seed1"], by_name["rte_minilm_transfer_seed1"]
    for argv in (minilm, minilm_aux):
        assert argv[argv.index("--model") + 1] == "minilm" and argv[argv.index("--sparsity") + 1] == "0.6"
        assert "--size-of" not in argv and "model.max_seq_len=64" not in argv  # not shortened
        assert [a for a in argv if a.startswith("train.precision=")] == ["train.precision=fp32"]
    assert "--aux" not in minilm
    assert [a for a in minilm_aux if ".max_examples=" in a] == [f"transfer.aux.{i}.max_examples=6666" for i in range(3)]
    results = json.loads(script.RESULTS.read_text())
    assert "model.max_seq_len=64" in results["protocol"] and "5,000" in results["protocol"]
    assert results["commands"] == ["python bench/size_matched.py --tasks glue/rte glue/mrpc --seeds 1"]
    cells = {(r["task"], r["model"], r["method"]): r for r in results["records"]}
    assert len(cells) == 6
    aux_record = cells[("glue/rte", "mpnet", "transfer")]
    assert aux_record["command"].startswith("auxprune prune --model mpnet-base --size-of minilm --task glue/rte")
    assert aux_record["shortened"] == ["model.max_seq_len=64", "train.precision=bf16", "aux examples 5000"]
    assert aux_record["precision"] == "bf16" and cells[("glue/rte", "minilm", "baseline")]["precision"] == "fp32"
    assert (aux_record["teacher"], aux_record["pruned"], aux_record["untrained"]) == (0.84, 0.80, 0.70)
    script.main()  # everything recorded: nothing runs again
    assert len(script.ran) == 6


def test_table_reads_minilm_rows_from_bi_encoder_and_says_whether_the_target_is_met(script, monkeypatch, capsys):
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/mrpc",), seeds=(1, 2))
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/mrpc", "--seeds", "1"])
    script.main()
    assert len(script.ran) == 2  # MPNet only: MiniLM-L6 is in bi_encoder.json

    # latency: the MiniLM-L6 dense teacher of the bi_encoder run and the MPNet models, faked
    teacher = script.BI_WORK / "mrpc_bi_s0.6_baseline_seed1" / "teacher"
    teacher.mkdir(parents=True)
    (teacher / "config.json").write_text("{}")
    speed = {"minilm_dense": 10.0, "mpnet_dense": 80.0, "mpnet_pruned": 9.0, "mpnet_pruned_transfer": 9.5}
    measured = []

    def fake_measure(model_dir, runtime, onnx_dir, threads, warmup, iterations, min_time):
        row = next(r for task, seed, r, p in script.latency_models(["glue/mrpc"], [1]) if p == model_dir)
        measured.append((row, runtime))
        ms = speed[row] * (1 if runtime == "torch" else 0.5)
        return {"latency_ms_p50": {"1x128": ms, "32x128": 30 * ms}, "latency": {}}

    monkeypatch.setattr(script, "measure_latency", fake_measure)
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--latency", "--rows", "mpnet_pruned", "--threads", "2"])
    script.main()
    assert measured == [("mpnet_pruned", "torch"), ("mpnet_pruned", "onnxruntime")]  # --rows: that row's model only
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--latency", "--tasks", "glue/mrpc", "--seeds", "1", "--threads", "2"])
    script.main()
    assert sorted(measured) == sorted((row, rt) for row in speed for rt in ("torch", "onnxruntime"))
    script.main()  # measured: not again
    assert len(measured) == 8

    out = print_table(script, monkeypatch, capsys)
    rows = table_rows(out, "glue/mrpc")
    assert len(rows) == len(script.ROWS) - len(script.ON_REQUEST_ROWS)  # aux_in_pruning not run: no row
    assert rows["MiniLM-L6 dense"][3] == "79.0 ± 0.0 (2)"  # bi_encoder.json's teacher at 0.6, seeds 1-2
    assert rows["MiniLM-L6 dense + transfer"][3] == "78.0 ± 0.0 (2)"
    assert rows["untrained MiniLM-L6"][3] == "75.0 ± 0.0 (2)"
    assert rows["MiniLM-L6 dense"][4:6] == ["10.6M", "22.6M"]  # no run report here: the known MiniLM-L6 counts
    assert rows["untrained MPNet-base"][3] == "70.0 (1)"
    assert rows["MPNet-base dense"][3:6] == ["82.0 (1)", "84.9M", "109.5M"]
    assert rows["MPNet-base dense + intermediate training"][3] == "84.0 (1)"
    assert rows["MPNet-base pruned to MiniLM-L6 size"][3:6] == ["76.0 (1)", "10.6M", "34.6M"]
    plus = rows["MPNet-base pruned to MiniLM-L6 size + transfer (--aux)"]
    assert plus[3] == "80.0 (1)" and plus[6:10] == ["9.5", "285.0", "4.8", "142.5"]
    assert rows["MiniLM-L6 dense + transfer"][6:10] == ["10.0", "300.0", "5.0", "150.0"]  # the dense MiniLM's
    target = [line for line in out.splitlines() if line.startswith("- glue/mrpc: target")]
    assert len(target) == 1 and "target met" in target[0] and "80.0" in target[0] and "78.0" in target[0]
    assert "- glue/mrpc: latency on 2 thread(s), one model at a time" in out
    assert "- target (all three pairs): not measured on all three pairs yet" in out

    # one model timed again on 1 thread: the table keeps to the thread count most rows have, never mixing two
    results = json.loads(script.RESULTS.read_text())
    again = next(r for r in results["records"] if r["kind"] == "latency" and r["row"] == "mpnet_pruned")
    script.RESULTS.write_text(json.dumps({**results, "records": results["records"] + [
        {**again, "threads": 1, "latency_ms_p50": {"1x128": 50.0, "32x128": 60.0}}]}))
    script.main()
    assert capsys.readouterr().out == out

    # slower than MiniLM-L6: not met
    for r in results["records"]:
        if r["kind"] == "latency" and r["row"] == "mpnet_pruned_transfer":
            r["latency_ms_p50"]["32x128"] = 1000.0
    script.RESULTS.write_text(json.dumps(results))
    script.main()
    out = capsys.readouterr().out
    assert "- glue/mrpc: target not met" in out and "- target (all three pairs): not met" in out


def test_measure_latency_times_each_shape_with_the_deploy_loop(script, monkeypatch, tmp_path, tokenizer):
    from conftest import save_pruned

    save_pruned(tmp_path / "run", tokenizer)
    monkeypatch.setattr(script, "SHAPES", ("1x8", "2x16"))
    result = script.measure_latency(tmp_path / "run" / "model", "torch", tmp_path / "onnx", 1, 0, 2, 0.0)
    assert set(result["latency"]) == {"1x8", "2x16"} and result["latency"]["2x16"]["iterations"] >= 2
    assert result["latency_ms_p50"] == {s: v["latency_ms_p50"] for s, v in result["latency"].items()}
    assert all(p50 > 0 for p50 in result["latency_ms_p50"].values())


def test_minilm_rows_fall_back_to_a_cell_that_trained_its_own_teacher_at_another_sparsity(script):
    records = [
        # RTE transfer ran at 0.9 alone and trained its teacher there; its baseline has a 0.6 cell
        {"task": "glue/rte", "sparsity": 0.9, "method": "transfer", "seed": 1, "teacher": 0.61, "pruned": 0.57,
         "teacher_from": "trained in this run"},
        {"task": "glue/rte", "sparsity": 0.6, "method": "baseline", "seed": 1, "teacher": 0.59, "pruned": 0.57,
         "teacher_from": "trained in this run"},
        {"task": "glue/rte", "sparsity": 0.9, "method": "baseline", "seed": 1, "teacher": 0.59, "pruned": 0.60,
         "teacher_from": "teacher.path"},
        {"task": "glue/rte", "sparsity": 0.9, "method": "baseline", "seed": 2, "teacher": 0.5, "pruned": 0.5,
         "teacher_from": "teacher.path"}]  # pruned another cell's teacher: not a row of its own
    script.BI_RESULTS.write_text(json.dumps({"records": [
        {**r, "metric_name": "accuracy", "untrained": 0.62, "head": "bi", "command": "c"} for r in records]}))
    cells = script.bi_encoder_minilm()
    assert sorted(cells) == [("glue/rte", "baseline", 1), ("glue/rte", "transfer", 1)]
    assert cells[("glue/rte", "transfer", 1)]["teacher"] == 0.61
    assert cells[("glue/rte", "transfer", 1)]["run_dir"].endswith("rte_bi_s0.9_transfer_seed1")
    assert cells[("glue/rte", "baseline", 1)]["run_dir"].endswith("rte_bi_s0.6_baseline_seed1")  # 0.6 first


def test_an_mpnet_cell_of_another_precision_is_a_check_beside_the_table_not_a_row(script, monkeypatch, capsys):
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/stsb",))
    old_dir = str(script.WORK / "stsb_mpnet_baseline_seed1")  # recorded before MPNet moved to bf16: no precision
    script.RESULTS.parent.mkdir(parents=True)
    script.RESULTS.write_text(json.dumps({"records": [
        {"kind": "cell", "task": "glue/stsb", "model": "mpnet", "method": "baseline", "seed": 1,
         "metric_name": "pearson", "teacher": 0.899, "pruned": 0.852, "untrained": 0.881, "run_dir": old_dir,
         "params": fake_report(["mpnet-base", "--task", "glue/stsb"])["params"], "command": "c"},
        {"kind": "latency", "task": "glue/stsb", "seed": 1, "row": "mpnet_pruned", "model_dir": old_dir + "/model",
         "runtime": "torch", "threads": 2, "latency_ms_p50": {"1x128": 1.0, "32x128": 2.0}, "command": "c"}]}))
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/stsb", "--seeds", "1", "--methods", "baseline"])
    script.main()  # the fp32 record does not stand for the bf16 cell
    assert [Path(a[a.index("--output") + 1]).name for a in script.ran] == ["stsb_mpnet_baseline_bf16_seed1"]
    out = print_table(script, monkeypatch, capsys)
    rows = table_rows(out, "glue/stsb")
    assert rows["MPNet-base pruned to MiniLM-L6 size"][3] == "76.0 (1)"  # the bf16 cell's alone, not averaged
    assert rows["MPNet-base pruned to MiniLM-L6 size"][6] == ""  # the fp32 model's latency is not this row's
    # no transfer cell yet; then one below MiniLM-L6's: not met before any latency is measured
    assert "- glue/stsb: target not measured yet (missing: MPNet-base pruned" in out
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/stsb", "--seeds", "1"])
    script.main()
    out = print_table(script, monkeypatch, capsys)
    assert "- glue/stsb: target not measured yet: MPNet-base pruned + transfer 80.0" in out  # beats 78.0: latency next
    results = json.loads(script.RESULTS.read_text())
    for r in results["records"]:
        if r["kind"] == "cell" and r["method"] == "transfer":
            r["pruned"] = 0.70
    script.RESULTS.write_text(json.dumps(results))
    script.main()
    out = capsys.readouterr().out
    assert ("- glue/stsb: target not met: MPNet-base pruned + transfer 70.0 (1 seed) vs MiniLM-L6 dense + transfer "
            "78.0 (1 seed), not better; latency not measured") in out
    assert "- target (all three pairs): not met" in out
    assert ("- glue/stsb: MPNet-base baseline seed 1 in fp32 (not in the table): teacher 89.9, pruned 85.2; "
            "in bf16: teacher 82.0, pruned 76.0") in out


def test_aux_in_pruning_prunes_the_baseline_cells_teacher_with_the_auxiliary_data(script, monkeypatch, capsys):
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/mrpc",))
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/mrpc", "--seeds", "1",
                                      "--methods", "aux_in_pruning"])
    script.main()
    assert script.ran == [] and "[wait] mrpc_mpnet_aux_in_pruning_bf16_seed1: needs" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/mrpc", "--seeds", "1",
                                      "--methods", "baseline", "aux_in_pruning"])
    script.main()
    assert len(script.ran) == 2  # MPNet only: no MiniLM-L6 cell for this method
    argv = script.ran[1]
    baseline_teacher = script.WORK / "mrpc_mpnet_baseline_bf16_seed1" / "teacher"
    assert argv[argv.index("--output") + 1].endswith("mrpc_mpnet_aux_in_pruning_bf16_seed1")
    assert f"teacher.path={baseline_teacher}" in argv and "transfer.teacher_aux_epochs=0" in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--aux"] == script.AUX["glue/mrpc"]
    rows = table_rows(print_table(script, monkeypatch, capsys), "glue/mrpc")
    assert rows["MPNet-base pruned to MiniLM-L6 size + auxiliary data in pruning only"][3] == "80.0 (1)"
    assert rows["MPNet-base dense + intermediate training"][3] == ""  # its teacher is the baseline's, not a new row
    assert rows["MPNet-base pruned to MiniLM-L6 size + transfer (--aux)"][3] == ""


def test_a_dense_models_latency_stands_in_for_the_same_architecture_on_another_task(script, monkeypatch, capsys):
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/stsb",))
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/stsb", "--seeds", "1", "--methods", "baseline"])
    script.main()

    def timed(task, row, threads, ms):
        return {"kind": "latency", "task": task, "seed": 1, "row": row, "model_dir": f"{task}/{row}/{threads}",
                "runtime": "torch", "threads": threads, "latency_ms_p50": {"1x128": ms, "32x128": 10 * ms}}

    results = json.loads(script.RESULTS.read_text())
    results["records"] += [timed("glue/stsb", "mpnet_pruned", 1, 3.0), timed("glue/rte", "minilm_dense", 1, 4.0),
                           timed("glue/rte", "minilm_dense", 2, 99.0),  # another thread count: never mixed in
                           timed("glue/rte", "mpnet_pruned", 1, 7.0)]  # a pruned model is its task's own
    script.RESULTS.write_text(json.dumps(results))
    out = print_table(script, monkeypatch, capsys)
    rows = table_rows(out, "glue/stsb")
    assert rows["MiniLM-L6 dense"][6:8] == ["4.0", "40.0"] and rows["MPNet-base pruned to MiniLM-L6 size"][6] == "3.0"
    assert ("- glue/stsb: latency on 1 thread(s), one model at a time; MiniLM-L6 dense: timed on another task's "
            "model of the same architecture") in out


def test_other_recipes_from_bi_recipe_are_rows_of_their_own_with_their_own_target_line(script, monkeypatch, capsys,
                                                                                       tmp_path):
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/mrpc",))
    monkeypatch.setattr(sys, "argv", ["size_matched.py", "--tasks", "glue/mrpc", "--seeds", "1"])
    script.main()
    folder = tmp_path / "recipe" / "mrpc_mpnet_minilm_size_transfer_x2_hidden_bf16_seed1"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    params = {"encoder_kept": 10_100_000, "total": 20_000_000}

    def cell(variant, pruned, **extra):
        return {"model": "mpnet", "task": "glue/mrpc", "sparsity": "size of minilm", "variant": variant, "seed": 1,
                "pruned": pruned, "teacher": 0.84, "params": params, **extra,
                "command": f"auxprune prune --output {folder.parent / (variant + '_seed1')} --overwrite"}

    script.RECIPE_RESULTS.write_text(json.dumps({"records": [
        cell("prune_x2_hidden", 0.77, precision="bf16"),
        {**cell("transfer_x2_hidden", 0.81, precision="bf16"), "command": f"auxprune prune --output {folder}"},
        cell("transfer_x2_hidden", 0.99),  # fp32 (no precision): not this table's
        cell("prune_x2", 0.98, precision="bf16"),  # a variant the table does not show
        {**cell("prune_x2_hidden", 0.97, precision="bf16"), "model": "minilm"}]}))
    out = print_table(script, monkeypatch, capsys)
    rows = table_rows(out, "glue/mrpc")
    hidden = "MPNet-base pruned to MiniLM-L6 size, 12 pruning epochs, hidden dims too"
    hidden_transfer = "MPNet-base pruned to MiniLM-L6 size + transfer (--aux), 12 pruning epochs, hidden dims too"
    assert rows[hidden][3:6] == ["77.0 (1)", "10.1M", "20.0M"] and rows[hidden_transfer][3] == "81.0 (1)"
    assert rows["MPNet-base pruned to MiniLM-L6 size + transfer (--aux)"][3] == "80.0 (1)"  # the protocol's own
    assert ("- glue/mrpc (12 pruning epochs, hidden dims too): target not measured yet: MPNet-base pruned + transfer "
            "81.0 (1 seed) vs MiniLM-L6 dense + transfer 78.0 (1 seed), better; latency not measured") in out
    assert "- glue/mrpc: target not measured yet: MPNet-base pruned + transfer 80.0 (1 seed)" in out  # its own line
    assert "- target (all three pairs): not measured on all three pairs yet" in out
    assert "- target (all three pairs, 12 pruning epochs, hidden dims too): not measured on all three pairs yet" in out
    found = {(row, path) for task, seed, row, path in script.latency_models(["glue/mrpc"], [1])}
    assert ("mpnet_pruned_transfer_x2_hidden", folder / "model") in found  # timed like the other pruned models
    assert not any(row == "mpnet_pruned_x2_hidden" for row, _ in found)  # its folder is gone: nothing to time


def test_minilm_fine_tuned_by_sentence_transformers_is_a_row_once_measured(script, monkeypatch, capsys):
    """The peer tool's MiniLM-L6 (bench/peer_sentence_transformers.py) beside auxprune's own fine-tuned one, with the
    dense MiniLM-L6's parameters and latency (the same architecture)."""
    bi_encoder_results(script.BI_RESULTS, tasks=("glue/mrpc",), seeds=(1,))
    assert "fine-tuned by sentence-transformers" not in print_table(script, monkeypatch, capsys)
    script.peer.RESULTS.write_text(json.dumps({"records": [
        {"task": "glue/mrpc", "seed": seed, "fine_tuned": value} for seed, value in ((1, 0.80), (2, 0.81))]}))
    row = table_rows(print_table(script, monkeypatch, capsys), "glue/mrpc")["MiniLM-L6 fine-tuned by sentence-transformers"]
    assert row[3:6] == ["80.5 ± 0.7 (2)", "10.6M", "22.6M"]
