"""The Lagrangian controller on a tiny model with little data: it tracks the target and lands on it."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from auxprune.config import build_config
from auxprune.data.batching import make_loader
from auxprune.surgery import cut
from auxprune.train import RunLog, prune
from conftest import tiny_model


def little_data(n: int = 200, seed: int = 0) -> list[dict]:
    """A learnable toy task: is token 7 in the sequence?"""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        length = int(torch.randint(6, 16, (1,), generator=g))
        ids = torch.randint(8, 99, (length,), generator=g)
        label = int(torch.rand(1, generator=g) < 0.5)
        if label:
            ids[int(torch.randint(1, length, (1,), generator=g))] = 7
        items.append({"input_ids": ids.tolist(), "token_type_ids": [0] * length, "label": label})
    return items


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_controller_tracks_and_lands_within_tolerance(target, tmp_path):
    torch.manual_seed(0)
    model = tiny_model(num_labels=2, hidden_size=64, head_dim=8, layer_heads=[8] * 3, layer_ffn=[128] * 3).train()
    teacher = tiny_model(num_labels=2, hidden_size=64, head_dim=8, layer_heads=[8] * 3, layer_ffn=[128] * 3)
    config = build_config(None, overrides=[{"prune": {"target_sparsity": target, "epochs": 12, "tolerance": 0.01},
                                            "train": {"batch_size": 16, "min_epoch_examples": 0}}])
    loader = make_loader(little_data(), 16, 0, shuffle=True, seed=0)
    log = RunLog(tmp_path / "log.jsonl")
    result = prune(model, teacher, loader, config=config, accelerator=Accelerator(cpu=True), log=log)
    log.close()
    # The controller alone (expected sparsity of the learned gates) ends close to the target ...
    assert abs(result.expected_sparsity - target) < 0.05
    # ... and the fixed structure, measured from the cut model, lands within the tolerance.
    masks = result.pruner.final_structure(target, config.prune.tolerance)
    assert abs(masks.sparsity() - target) <= config.prune.tolerance + 1e-9
    small = cut(model, masks)
    kept = sum(p.numel() for layer in small.auxprune.layers for p in layer.parameters())
    dense = sum(p.numel() for layer in model.auxprune.layers for p in layer.parameters())
    assert abs((1 - kept / dense) - target) <= config.prune.tolerance + 1e-9
