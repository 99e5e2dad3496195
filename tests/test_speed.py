"""FLOPs accounting and the speed benchmark (command and bench/speed.py) on tiny models."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from auxprune.cli import main
from auxprune.model.configuration import AuxpruneConfig
from auxprune.speed import dense_config, fitted_inputs, forward_flops, size_reference
from conftest import MPNET, letter_tokenizer, save_pruned, tiny_model

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--threads", "1", "--warmup", "1", "--iterations", "2", "--min-time", "0", "--batch-size", "2", "--seq-len", "16"]
KEYS = {"pruned", "baseline", "speedup", "flops_speedup", "runtime", "batch_size", "seq_len", "threads"}
TIMING_KEYS = {"latency_ms_p50", "latency_ms_p90", "throughput"}


def test_forward_flops_by_hand():
    config = AuxpruneConfig(hidden_size=16, head_dim=4, layer_heads=[2, 0, 4], layer_ffn=[0, 10, 20],
                            pooling="pooler", pooler_size=12, num_labels=3)
    # Per token, L = 8:
    #   layer 0: attention 2*4*(2*4)*16 = 1024, scores/context 2*2*(2*4)*8 = 256, no FFN
    #   layer 1: no attention, FFN 2*2*10*16 = 640
    #   layer 2: attention 2*4*(4*4)*16 = 2048, scores/context 2*2*(4*4)*8 = 512, FFN 2*2*20*16 = 1280
    # = 5760 per token, x 8 tokens = 46080; head: pooler 2*16*12 = 384, classifier 2*12*3 = 72.
    assert forward_flops(config, 8) == 46080 + 384 + 72
    mean = AuxpruneConfig(hidden_size=16, head_dim=4, layer_heads=[2, 0, 4], layer_ffn=[0, 10, 20],
                          pooling="mean", num_labels=1)
    assert forward_flops(mean, 8) == 46080 + 2 * 16 * 1
    # Attention scores grow with the sequence: per token 2*2*(8 + 16)*L more for each extra token of L.
    assert forward_flops(mean, 9) - forward_flops(mean, 8) == 5760 + 9 * 2 * 2 * 24


def test_dense_config_restores_the_original_shape():
    pruned = AuxpruneConfig(hidden_size=28, head_dim=8, layer_heads=[1, 4], layer_ffn=[0, 18],
                            original_hidden_size=32, original_num_heads=4, original_ffn_size=37, original_num_layers=2)
    dense = dense_config(pruned)
    assert (dense.hidden_size, dense.layer_heads, dense.layer_ffn) == (32, [4, 4], [37, 37]) and dense.is_dense
    assert forward_flops(dense, 128) / forward_flops(pruned, 128) > 1.5
    # MPNet: the dense shape reads every head's bias row again (the pruned layers' own lists go).
    mpnet = AuxpruneConfig.from_dict({**pruned.to_dict(), "relative_attention_num_buckets": 32, "type_vocab_size": 0,
                                      "layer_head_ids": [[3], [0, 1, 2, 3]]})
    dense = dense_config(mpnet)
    assert dense.layer_head_ids is None and dense.head_ids(0) == [0, 1, 2, 3] and dense.relative_attention_num_buckets == 32


def test_the_size_reference_is_the_named_model_with_the_pruned_models_head(tmp_path):
    """`prune.size_of`'s model, rebuilt from its config alone for timing, takes the pruned model's head, and
    building it draws nothing from the run's random stream."""
    reference = save_pruned(tmp_path / "run", letter_tokenizer(tmp_path / "tok"), num_labels=2)
    pruned = tiny_model(num_labels=1, head="bi", label_range=[0.0, 5.0], **MPNET)
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    other = size_reference(tmp_path / "run", pruned)
    assert torch.equal(torch.rand(3), expected_next)
    assert other.config.layer_heads == reference.config.layer_heads and other.config.hidden_size == reference.config.hidden_size
    assert (other.config.head, other.config.num_labels, other.config.label_range) == ("bi", 1, [0.0, 5.0])
    assert not other.training


def test_another_models_batch_is_fitted_to_its_vocabulary_segments_and_positions():
    config = AuxpruneConfig(vocab_size=50, type_vocab_size=1, max_position_embeddings=8)
    inputs = {"input_ids": torch.tensor([[3, 60, 49, 99, 1, 2, 3, 4, 5, 6]]), "attention_mask": torch.ones(1, 10, dtype=torch.long),
              "token_type_ids": torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1]])}
    fitted = fitted_inputs(inputs, config)
    assert fitted["input_ids"].tolist() == [[3, 49, 49, 49, 1, 2, 3, 4]]
    assert fitted["token_type_ids"].tolist() == [[0] * 8] and fitted["attention_mask"].shape == (1, 8)
    assert inputs["input_ids"].shape == (1, 10)  # the pruned model's batch is left as it was


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs: one holding its dense teacher, one without (as bench/prune_limited_data.py leaves them)."""
    root = tmp_path_factory.mktemp("work")
    tokenizer = letter_tokenizer(root / "tok")
    save_pruned(root / "stsb_s0.6_seed1", tokenizer, num_labels=1, max_position_embeddings=40)
    shutil.copytree(root / "stsb_s0.6_seed1", root / "stsb_s0.9_seed1")
    shutil.move(root / "stsb_s0.9_seed1" / "teacher", root / "stsb_teacher_seed1")
    return root


def test_bench_command_json(runs, tmp_path, capsys):
    run = runs / "stsb_s0.6_seed1"
    out = tmp_path / "bench.json"
    assert main(["bench", str(run), "--runtime", "all", "--json", "--output", str(out), *FAST]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["runtime"] for r in rows] == ["torch", "onnxruntime", "onnxruntime-int8"]
    assert json.loads(out.read_text()) == rows
    pruned_config = AuxpruneConfig.from_pretrained(run / "model")
    dense_flops = forward_flops(AuxpruneConfig.from_pretrained(run / "teacher"), 16)
    for row in rows:
        assert set(row) >= KEYS
        assert set(row["pruned"]) >= TIMING_KEYS and set(row["baseline"]) >= TIMING_KEYS
        assert (row["batch_size"], row["seq_len"], row["threads"]) == (2, 16, 1)
        assert row["baseline_model"] == str(run / "teacher") and row["baseline_source"] == "run teacher"
        assert row["flops_speedup"] == pytest.approx(dense_flops / forward_flops(pruned_config, 16), rel=1e-3)
        assert row["speedup"] == pytest.approx(row["baseline"]["latency_ms_p50"] / row["pruned"]["latency_ms_p50"], rel=1e-3)
        for side in ("pruned", "baseline"):
            timing = row[side]
            assert 0 < timing["latency_ms_p50"] <= timing["latency_ms_p90"]
            assert timing["throughput"] == pytest.approx(2 / (timing["latency_ms_mean"] / 1000), rel=1e-3)
            assert timing["iterations"] >= 2


def test_bench_baselines(runs, capsys):
    # No teacher in the run: an explicit --baseline, or else the dense shape rebuilt from the config.
    run = runs / "stsb_s0.9_seed1"
    assert main(["bench", str(run / "model"), "--baseline", str(runs / "stsb_teacher_seed1"), "--json", *FAST]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["runtime"] == "torch" and row["baseline_model"] == str(runs / "stsb_teacher_seed1")
    assert main(["bench", str(run), "--json", *FAST]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["baseline_model"] is None and "random weights" in row["baseline_source"]
    assert row["flops_speedup"] > 1
    assert main(["bench", str(run), *FAST]) == 0
    assert "from FLOPs" in capsys.readouterr().out


def test_bench_user_errors(runs, capsys):
    run = runs / "stsb_s0.6_seed1"
    assert main(["bench", str(run), "--seq-len", "41", "--iterations", "1"]) == 2
    assert "--seq-len 41" in capsys.readouterr().err
    assert main(["bench", str(run), "--baseline", str(runs / "nope"), "--iterations", "1"]) == 2
    err = capsys.readouterr().err
    assert "--baseline" in err and "nope" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", str(run), "--threads", "0"]) == 2
    assert "auxprune: error: --threads 0: must be at least 1" in capsys.readouterr().err
    # The library names its parameters; the command line says them as flags (above).
    from auxprune.errors import UserError
    from auxprune.speed import bench

    with pytest.raises(UserError, match=r"^threads=0: must be at least 1$"):
        bench(run, threads=0)
    with pytest.raises(UserError, match=r"^seq_len=41: must be between 1 and"):
        bench(run, seq_len=41, iterations=1)


def test_bench_script_is_resumable(runs, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_speed", ROOT / "bench" / "speed.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "speed.json"
    argv = ["--runs", str(runs / "stsb_s0.6_seed1"), str(runs / "stsb_s0.9_seed1"), "--batch-sizes", "1", "2",
            "--seq-lens", "8", "--threads", "1", "--warmup", "0", "--iterations", "1", "--min-time", "0",
            "--output", str(out)]
    assert script.main(argv) == 0
    first = json.loads(out.read_text())
    assert first["command"].startswith("python bench/speed.py --runs ")
    assert len(first["rows"]) == 2 * 2 * 2  # runs x batch sizes x runtimes
    assert {r["runtime"] for r in first["rows"]} == {"torch", "onnxruntime"}
    # The run without its teacher uses the shared <task>_teacher_seed<seed> folder.
    assert {r["baseline_model"] for r in first["rows"]} == {str(runs / "stsb_s0.6_seed1" / "teacher"),
                                                            str(runs / "stsb_teacher_seed1")}
    capsys.readouterr()
    assert script.main(argv + ["--seq-lens", "8", "12"]) == 0
    assert capsys.readouterr().out.count("[done]") == 8  # only the new sequence length: 2 runs x 2 sizes x 2 runtimes
    second = json.loads(out.read_text())
    assert len(second["rows"]) == 16
    assert [r for r in second["rows"] if r["seq_len"] == 8] == first["rows"]
    assert script.main(["--runs", str(runs / "absent"), "--output", str(out)]) == 2
