"""The real all-MiniLM-L6-v2 cut to its first two layers, pruned on real STS-B data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from auxprune.cli import main
from auxprune.model.loading import load_for_task, packaged_minilm_path


@pytest.fixture(scope="module")
def minilm_2_layers(tmp_path_factory):
    source = packaged_minilm_path()
    path = tmp_path_factory.mktemp("minilm2")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "modules.json"):
        shutil.copy(source / name, path / name)
    shutil.copytree(source / "1_Pooling", path / "1_Pooling")
    config = json.loads((source / "config.json").read_text())
    config["num_hidden_layers"] = 2
    (path / "config.json").write_text(json.dumps(config))
    state = load_file(str(source / "model.safetensors"))
    keep = {k: v for k, v in state.items() if not k.startswith("encoder.layer.") or int(k.split(".")[2]) < 2}
    save_file(keep, str(path / "model.safetensors"))
    return path


def test_minilm_loads_with_mean_pooling(minilm_2_layers):
    model, tokenizer = load_for_task(minilm_2_layers, num_labels=1)
    assert model.config.pooling == "mean" and model.config.layer_heads == [12, 12] and model.config.hidden_size == 384
    batch = tokenizer(["A man is playing a flute."], ["A man plays the flute."], return_tensors="pt")
    with torch.no_grad():
        pooled, _ = model.auxprune.encode(**batch)
    assert pooled.shape == (1, 384) and torch.isfinite(pooled).all()


def test_prune_minilm_on_stsb(minilm_2_layers, data_dir, tmp_path):
    out = tmp_path / "stsb"
    code = main(["prune", "--model", str(minilm_2_layers), "--task", "glue/stsb", "--data-dir", str(data_dir),
                 "--sparsity", "0.6", "--max-train-examples", "96", "--output", str(out),
                 "--set", "teacher.epochs=2", "--set", "prune.epochs=2", "--set", "finetune.epochs=1",
                 "--set", "train.batch_size=16", "--set", "data.max_dev_examples=100", "--set", "model.max_seq_len=64",
                 "--set", "train.min_epoch_examples=0"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert abs(report["sparsity"] - 0.6) <= 0.01  # within 1 point, measured from the saved weights
    assert report["params"]["encoder_kept"] < 0.45 * report["params"]["encoder_total"]
    # 40 steps on a 2-layer cut: the point is the real model's plumbing; quality is measured in bench/.
    assert report["metrics"]["teacher"]["pearson"] > 0.1
    assert report["speed"]["pruned_latency_ms"] > 0
