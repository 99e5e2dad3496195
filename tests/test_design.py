"""The seams of docs/DESIGN.md: the toy pruner printed there runs through a whole prune job, and
nothing outside the hard-concrete pruner knows its parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import auxprune
from auxprune.pruners import Pruner

ROOT = Path(__file__).resolve().parents[1]
FAST = {"teacher": {"epochs": 1}, "prune": {"epochs": 2}, "finetune": {"epochs": 1},
        "train": {"batch_size": 8, "threads": 1, "min_epoch_examples": 0}, "model": {"max_seq_len": 32}}


def toy_pruner_class():
    """The first code block of docs/DESIGN.md, run as it is printed."""
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    assert len(code.strip().splitlines()) <= 50
    namespace: dict = {}
    exec(compile(code, "docs/DESIGN.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["SigmoidPruner"]


def test_toy_pruner_runs_a_whole_prune_job(tiny_bert, data_dir, tmp_path):
    toy = toy_pruner_class()
    out = tmp_path / "toy"
    settings = {**FAST, "data": {"data_dir": str(data_dir), "max_train_examples": 48, "max_dev_examples": 40}}
    report = auxprune.prune(out, task="glue/rte", sparsity=0.5, model=str(tiny_bert), settings=settings, pruner=toy)
    assert report["status"] == "ok" and json.loads((out / "report.json").read_text())["status"] == "ok"
    # The structure came from the toy's scores, calibrated to the target like any pruner's.
    assert abs(report["sparsity"] - 0.5) <= 0.05
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    pruning = [r for r in log if r.get("phase") == "prune"]
    assert pruning and all("expected_sparsity" in r and r["target"] == 0.5 for r in pruning)
    assert pruning[-1]["expected_sparsity"] > pruning[0]["expected_sparsity"]  # the penalty pulled the gates
    model, tokenizer = auxprune.load(out)
    assert isinstance(auxprune.predict((model, tokenizer), ["a dog runs."], pairs=["a cat sits."])[0]["label"], str)


def test_the_hard_concrete_pruner_and_the_toy_meet_the_protocol(tiny_bert):
    from auxprune.config import build_config
    from auxprune.pruners import PRUNERS
    from auxprune.structure import Dims

    dims = Dims(2, 4, 8, 37, 32)
    cfg = build_config(None).prune
    for make in (PRUNERS["hard_concrete"], toy_pruner_class()):
        pruner = make(dims, cfg, 10)
        assert isinstance(pruner, Pruner) and isinstance(pruner, torch.nn.Module)
        with torch.no_grad():
            assert 0 <= pruner.expected_sparsity().item() < 1
        assert pruner.regularization(1).dim() == 0
        masks = pruner.final_structure(cfg.target_sparsity, 0.05)
        assert masks.layer_heads and masks.layer_ffn


def test_only_the_hard_concrete_pruner_names_its_parameters():
    sources = sorted((ROOT / "src" / "auxprune").rglob("*.py"))
    named = [str(p.relative_to(ROOT)) for p in sources if "log_alpha" in p.read_text(encoding="utf-8")]
    assert named == ["src/auxprune/pruners/hard_concrete.py"]


@pytest.mark.parametrize("needle", ["def fine_tune(", "def prune(", "def prune_aux(", "def fine_tune_aux("])
def test_one_training_loop(needle):
    """The phases are set up in train.py; the loop (backward, optimizer steps, checkpoints) exists once."""
    text = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "src" / "auxprune").rglob("*.py")}
    assert needle in text["train.py"]
    loops = [name for name, body in text.items() if ".backward(" in body]
    assert loops == ["loop.py"]
