"""The diagnostics of a pruned bi-encoder: bench/embedding_spread.py's arithmetic (the off-diagonal cosine of
unit embeddings, its table row with and without a teacher; `auxprune.embed.embed` replaced by fixed vectors)
and bench/cut_probe.py's structure (the counts it is given, drawn reproducibly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_spread_is_one_for_collapsed_embeddings_and_low_for_orthogonal_ones(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import embedding_spread

    import auxprune.embed

    collapsed = np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (4, 1))
    monkeypatch.setattr(auxprune.embed, "embed", lambda model, texts: collapsed[:len(texts)])
    assert embedding_spread.spread(Path("m"), ["a", "b", "c", "d"]) == {"mean_cosine": 1.0, "p05": 1.0, "p95": 1.0}
    monkeypatch.setattr(auxprune.embed, "embed", lambda model, texts: np.eye(3, dtype=np.float32))
    assert embedding_spread.spread(Path("m"), ["a", "b", "c"])["mean_cosine"] == 0.0
    row = {"run_dir": "bench/work/x/run1", "task": "glue/stsb", "hidden_kept": 411, "metric_name": "pearson",
           "pruned_metric": -0.025, "pruned": {"mean_cosine": 1.0, "p05": 1.0, "p95": 1.0}}
    lines = embedding_spread.table([row, {**row, "teacher": {"mean_cosine": 0.093}}]).splitlines()
    assert lines[2] == "| run1 | glue/stsb | 411 | pearson -2.5 | 1.000 (1.000-1.000) |  |"
    assert lines[3].endswith("| 0.093 |") and len(lines[3].split("|")) == len(lines[0].split("|"))


def test_cut_probe_draws_the_structure_it_is_given(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import cut_probe

    from conftest import tiny_model

    model = tiny_model()  # 2 layers, 4 heads, hidden 32
    masks = cut_probe.structure_masks(model, heads=[0, 3], ffn=[5, 0], hidden=20, seed=1)
    assert masks.layer_heads == [0, 3] and masks.layer_ffn == [5, 0] and masks.hidden_kept == 20
    assert masks.keep["attn_block"].tolist() == [False, True] and masks.keep["ffn_block"].tolist() == [True, False]
    again = cut_probe.structure_masks(model, heads=[0, 3], ffn=[5, 0], hidden=20, seed=1)
    assert all(bool((masks.keep[f] == again.keep[f]).all()) for f in masks.keep)  # seeded: the same draw


def test_empty_sublayers_pairs_share_a_teacher_and_differ_in_the_switch_alone(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import empty_sublayers

    for model in empty_sublayers.MODELS:
        skip = empty_sublayers.cell_command(model, "glue/stsb", "baseline", 1, "skip")
        ran = empty_sublayers.cell_command(model, "glue/stsb", "baseline", 1, "run")
        out = skip.index("--output") + 1
        assert ran[:out] + ran[out + 1:len(skip) - 1] == skip[:out] + skip[out + 1:-1]  # the same run but the switch
        assert skip[-2:] == ["--set", "prune.skip_empty_sublayers=true"]  # said last: it overrides a table's pin
        assert ran[len(skip) - 2:] == ["--set", "prune.skip_empty_sublayers=false", "--set", f"teacher.path={skip[out]}/teacher"]
        assert not any("teacher.path" in a for a in skip)
    mpnet = empty_sublayers.cell_command("mpnet", "glue/stsb", "baseline", 1, "skip")
    assert mpnet[-4:-2] == ["--set", "prune.families=[heads,ffn_units,hidden]"] and "mpnet-base" in mpnet
    assert "--aux" in empty_sublayers.cell_command("minilm", "glue/rte", "transfer", 2, "skip")


def test_empty_sublayers_fp32_mpnet_pair_has_its_own_folders(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import empty_sublayers

    usual = empty_sublayers.cell_command("mpnet", "glue/stsb", "baseline", 1, "skip")
    fp32 = empty_sublayers.cell_command("mpnet", "glue/stsb", "baseline", 1, "skip", "fp32")
    assert empty_sublayers.cell_command("mpnet", "glue/stsb", "baseline", 1, "skip", "bf16") == usual
    assert fp32[-4:-2] == ["--set", "train.precision=fp32"]  # after size_matched's bf16, so it wins
    assert fp32[fp32.index("--output") + 1].endswith("stsb_mpnet_fp32_baseline_seed1_skip")
    ran = empty_sublayers.cell_command("mpnet", "glue/stsb", "baseline", 1, "run", "fp32")
    assert ran[-1].endswith("stsb_mpnet_fp32_baseline_seed1_skip/teacher")
    assert empty_sublayers.model_label({"model": "mpnet", "precision": "fp32"}) == "mpnet (fp32)"
    assert empty_sublayers.model_label({"model": "mpnet", "precision": "bf16"}) == "mpnet"
    assert empty_sublayers.model_label({"model": "minilm"}) == "minilm"  # records from before the option


def test_empty_sublayers_table_pairs_the_rules(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import empty_sublayers

    def row(rule, pruned, removed, cosine, seed=1):
        return {"model": "minilm", "task": "glue/stsb", "method": "baseline", "seed": seed, "rule": rule,
                "metric_name": "pearson", "teacher": 0.88, "untrained": 0.87, "pruned": pruned,
                "attention_removed": removed, "ffn_removed": 0, "cut_check": {"embedding_cosine_mean": cosine}}

    rows = [row("skip", 0.85, 2, 0.99), row("run", 0.80, 3, 0.85), row("skip", 0.84, 1, 0.98, seed=2)]
    lines = empty_sublayers.table(rows).splitlines()
    assert lines[2] == "| minilm | glue/stsb (pearson) | baseline | 1 | 88.0 | 87.0 | 85.0 / 80.0 | +5.0 | 2 + 0 / 3 + 0 | 0.990 / 0.850 |"
    assert lines[3].endswith("| 84.0 / - |  | 1 + 0 / - | 0.980 / - |")  # its run cell not measured yet: no difference
    assert lines[-1] == "- minilm: skip - run +5.0 on average over 1 pair(s), 1 better, 0 worse"


def test_size_sweep_cells_share_one_teacher_and_time_themselves_beside_minilm(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import empty_sublayers
    import size_sweep

    monkeypatch.setattr(empty_sublayers, "WORK", tmp_path / "empty_sublayers")
    monkeypatch.setattr(size_sweep, "WORK", tmp_path / "size_sweep")
    # no teacher anywhere: the smallest multiple's cell trains it, the others prune it
    teacher, exists = size_sweep.teacher_of("glue/stsb", [4, 2], 1, "fp32")
    assert (teacher, exists) == (tmp_path / "size_sweep" / "stsb_x2_fp32_seed1" / "teacher", False)
    first = size_sweep.cell_command("glue/stsb", 2, 1, "fp32", None)
    assert first[first.index("--target-params") + 1] == str(2 * size_sweep.MINILM_ENCODER)
    assert first[first.index("--speed-reference") + 1] == "minilm" and not any("teacher.path" in a for a in first)
    later = size_sweep.cell_command("glue/stsb", 4, 1, "fp32", teacher)
    assert later[-2:] == ["--set", f"teacher.path={teacher}"] and "train.precision=fp32" in later
    # the --aux cells train their own teacher (stage 1 on the auxiliary data first) and prune with that data
    aux_teacher, exists = size_sweep.teacher_of("glue/stsb", [2, 4], 1, "fp32", "transfer")
    assert (aux_teacher.parent.name, exists) == ("stsb_x2_transfer_fp32_seed1", False)
    aux = size_sweep.cell_command("glue/stsb", 4, 1, "fp32", aux_teacher, "transfer")
    assert aux[aux.index("--aux") + 1] == "aux/sick_relatedness.tsv" and "transfer.aux.0.max_examples=5000" in aux
    assert aux[aux.index("--output") + 1].endswith("stsb_x4_transfer_fp32_seed1")
    # a later invocation with a smaller size prunes the teacher an earlier one trained, not a second copy
    (tmp_path / "size_sweep" / "stsb_x2_fp32_seed1" / "teacher").mkdir(parents=True)
    (tmp_path / "size_sweep" / "stsb_x2_fp32_seed1" / "teacher" / "config.json").write_text("{}")
    (tmp_path / "size_sweep" / "stsb_x3_transfer_fp32_seed1" / "teacher").mkdir(parents=True)
    (tmp_path / "size_sweep" / "stsb_x3_transfer_fp32_seed1" / "teacher" / "config.json").write_text("{}")
    assert size_sweep.teacher_of("glue/stsb", [1], 1, "fp32") == (teacher, True)
    assert size_sweep.teacher_of("glue/stsb", [1], 1, "fp32", "transfer")[0].parent.name == "stsb_x3_transfer_fp32_seed1"
    assert size_sweep.teacher_of("glue/stsb", [1], 2, "fp32") == (
        tmp_path / "size_sweep" / "stsb_x1_fp32_seed2" / "teacher", False)
    # empty_sublayers' MPNet teacher of the same task, seed and precision is used when it exists
    other = tmp_path / "empty_sublayers" / "stsb_mpnet_fp32_baseline_seed1_skip" / "teacher"
    other.mkdir(parents=True)
    (other / "config.json").write_text("{}")
    assert size_sweep.teacher_of("glue/stsb", [2, 4], 1, "fp32") == (other, True)
    assert size_sweep.teacher_of("glue/stsb", [2, 4], 2, "fp32")[1] is False


def test_size_sweep_times_any_seeds_fine_tuned_minilm_as_the_latency_reference(monkeypatch, tmp_path):
    """Only MiniLM-L6's architecture is timed: a seed-1 sweep takes seed 2's fine-tuned MiniLM-L6 when seed 1 has none,
    and the asked seed's when it has one."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import empty_sublayers
    import size_sweep

    monkeypatch.setattr(empty_sublayers, "WORK", tmp_path)
    monkeypatch.setattr(size_sweep, "records", lambda: [])

    def fine_tuned(seed: int) -> Path:
        folder = tmp_path / empty_sublayers.cell_name("minilm", "glue/rte", "baseline", seed, "skip") / "teacher"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        return folder

    assert size_sweep.latency_models(["glue/rte"], [1]) == []
    second = fine_tuned(2)
    assert size_sweep.latency_models(["glue/rte"], [1]) == [
        ({"task": "glue/rte", "seed": 2, "multiple": None, "method": "baseline"}, second)]
    first = fine_tuned(1)
    assert [path for _, path in size_sweep.latency_models(["glue/rte"], [1])] == [first]


def test_size_sweep_latency_skips_timed_models_unless_asked_to_retime_them(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import size_sweep

    monkeypatch.setattr(size_sweep, "RESULTS", tmp_path / "size_sweep.json")
    model = size_sweep.ROOT / "bench" / "work" / "some_cell" / "model"
    which = {"task": "glue/rte", "seed": 1, "multiple": 1.0, "method": "baseline"}
    monkeypatch.setattr(size_sweep, "latency_models", lambda tasks, seeds: [(which, model)])
    timed = []

    def measure(path, runtime, onnx_dir, threads, warmup, iterations, min_time):
        timed.append(runtime)
        return {"latency_ms_p50": {"1x128": 10.0 + len(timed)}}

    monkeypatch.setattr(size_sweep.size_matched, "measure_latency", measure)
    run = lambda retime: size_sweep.run_latency(["glue/rte"], [1], 1, 0, 1, 0.0, "cmd", retime)  # noqa: E731
    run(False)
    assert timed == list(size_sweep.size_matched.RUNTIMES)
    run(False)  # recorded: skipped
    assert len(timed) == 2
    run(True)  # timed again, its records replaced rather than added
    latency = [r for r in size_sweep.records() if r["kind"] == "latency"]
    assert len(timed) == 4 and sorted(r["latency_ms_p50"]["1x128"] for r in latency) == [13.0, 14.0]


def test_size_sweep_sets_minilm_as_it_is_beside_its_fine_tuned_rows(monkeypatch):
    """The sweep's MiniLM-L6 rows: the model used as it is (its untrained cosine score), dense, dense + transfer."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import size_sweep

    cells = {("glue/rte", "baseline", 1): {"teacher": 0.57, "untrained": 0.625},
             ("glue/rte", "baseline", 2): {"teacher": 0.59, "untrained": 0.625},
             ("glue/rte", "transfer", 1): {"teacher": 0.60, "untrained": 0.625},
             ("glue/mrpc", "baseline", 1): {"teacher": 0.79, "untrained": None}}
    monkeypatch.setattr(size_sweep.size_matched, "records", lambda: [])
    monkeypatch.setattr(size_sweep.size_matched, "minilm_cells", lambda own: cells)
    monkeypatch.setattr(size_sweep.peer, "scores", lambda task: [0.61, 0.63] if task == "glue/rte" else [])
    assert size_sweep.minilm_rows("glue/rte") == [("untrained MiniLM-L6", "62.5 ± 0.0 (2)"),
                                                  ("MiniLM-L6 dense", "58.0 ± 1.4 (2)"),
                                                  ("MiniLM-L6 dense + transfer", "60.0 (1)"),
                                                  ("MiniLM-L6 fine-tuned by sentence-transformers", "62.0 ± 1.4 (2)")]
    assert size_sweep.minilm_rows("glue/mrpc") == [("MiniLM-L6 dense", "79.0 (1)")]  # no bar measured: no row


def test_size_sweep_table_reads_the_runs_speed_beside_minilm(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import size_sweep

    monkeypatch.setattr(size_sweep, "minilm_rows", lambda task: [("MiniLM-L6 dense", "88.9 ± 0.3 (3)")])
    row = {"task": "glue/stsb", "multiple": 2.0, "seed": 1, "precision": "fp32", "metric_name": "pearson",
           "teacher": 0.899, "untrained": 0.881, "pruned": 0.872, "hidden_kept": 768, "heads_kept": 30,
           "ffn_units_kept": 9000, "params": {"encoder_kept": 21_000_000, "total": 44_900_000},
           "speed": {"batch_size": 64, "seq_len": 11, "reference": {"speedup": 0.8, "pruned_latency_ms": 140.0,
                                                                   "latency_ms": 112.0}}}
    lines = size_sweep.table([row]).splitlines()
    assert lines[2].startswith("| glue/stsb (pearson) | MiniLM-L6 dense | 88.9 ± 0.3 (3) | 10.6M |")
    assert "| untrained MPNet-base | 88.1 (seed 1) |" in lines[3] and "| MPNet-base dense, fp32 | 89.9 (seed 1) |" in lines[4]
    assert lines[5] == ("| glue/stsb (pearson) | MPNet-base pruned to 2x MiniLM-L6's encoder, fp32 | 87.2 (seed 1) | 21.0M "
                        "| 44.9M | 768 | 30 | 9,000 | 0.8x (140 against 112 ms, 64 x 11) |")


def test_size_sweep_latency_table_gives_each_model_against_minilm(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import size_sweep

    def timed(multiple, runtime, ms, threads=1, task="glue/stsb", method="baseline"):
        return {"kind": "latency", "task": task, "seed": 1, "multiple": multiple, "method": method,
                "runtime": runtime, "threads": threads, "latency_ms_p50": {"1x128": ms, "32x128": 10 * ms}}

    rows = [timed(2.0, "torch", 41.0, method="transfer"), timed(2.0, "torch", 40.0), timed(None, "torch", 32.0),
            timed(None, "onnxruntime", 16.0), timed(None, "torch", 99.0, threads=2),
            timed(1.0, "torch", 20.0, task="glue/mrpc"), timed(None, "torch", 10.0, task="glue/mrpc")]
    lines = size_sweep.latency_table(rows).splitlines()
    assert lines[0] == "| task | model | torch 1x128 p50 ms | torch 32x128 p50 ms | ort 1x128 p50 ms | ort 32x128 p50 ms |"
    assert lines[2] == "| glue/stsb | MiniLM-L6 | 32.0 | 320.0 | 16.0 | 160.0 |"  # the 2-thread record is left out
    assert lines[3] == "| glue/stsb | MPNet-base pruned to 2x MiniLM-L6's encoder (seed 1) | 40.0 (1.25x) | 400.0 (1.25x) | - | - |"
    assert lines[4].startswith("| glue/stsb | MPNet-base pruned to 2x MiniLM-L6's encoder + transfer (--aux) (seed 1) | 41.0 (1.28x) |")
    assert lines[6] == "| glue/mrpc | MPNet-base pruned to 1x MiniLM-L6's encoder (seed 1) | 20.0 (2.00x) | 200.0 (2.00x) | - | - |"
    assert lines[-1] == "- latency on 1 thread(s), one model at a time, random tokens"
    assert size_sweep.latency_table([]) == "" and "latency" not in size_sweep.tables([])
