"""Saved model folders load with torch and transformers alone (`trust_remote_code=True`), and carry a model card.

The remote-code test runs in a subprocess whose Python sees only torch, transformers and what they
require: `python -S` (no site-packages, no .pth files, so not the editable auxprune install) with
PYTHONPATH set to a folder of links to exactly those distributions, as `pip install torch
transformers` in a fresh virtual environment would give. auxprune and accelerate cannot be imported there.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

import auxprune
from auxprune.model_card import command_line, render
from auxprune.remote_code import AUTO_MAP, modeling_sources
from conftest import ARCHITECTURES, save_pruned

torch.set_num_threads(1)

CHILD = r"""
import json, sys
for name in ("auxprune", "accelerate"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} is importable in the isolated environment")
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

torch.set_num_threads(1)
folders, texts, pairs = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
results = []
for folder in folders:
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    batch = tokenizer(texts, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    pipe = pipeline("text-classification", model=folder, trust_remote_code=True)
    results.append({"logits": logits.tolist(), "pipeline": pipe([{"text": t, "text_pair": p} for t, p in zip(texts, pairs)]),
                    "module": type(model).__module__})
print(json.dumps({"results": results, "imported": sorted({m.split(".")[0] for m in sys.modules} & {"auxprune", "accelerate"})}))
"""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(roots: list[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need (their requirements without extras, recursively)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if _key(name) in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[_key(name)] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(seen.values())


def isolated_site(folder: Path, roots: list[str]) -> Path:
    """A folder of links to the top-level modules and metadata of `roots` and their requirements only."""
    folder.mkdir()
    for dist in requirement_closure(roots):
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            source, target = base / top, folder / top
            if source.exists() and not target.exists() and top != "__pycache__":
                target.symlink_to(source)
    return folder


def test_saved_folder_loads_with_torch_and_transformers_only(tmp_path, tokenizer):
    """For every architecture (one child process for all: its start-up is the cost)."""
    runs = {name: tmp_path / name for name in ARCHITECTURES}
    models = {name: save_pruned(run, tokenizer, pooling="pooler", drop_attention=True, head_scale=30.0, task="glue/rte",
                                **ARCHITECTURES[name]) for name, run in runs.items()}
    for run in runs.values():
        config = json.loads((run / "model" / "config.json").read_text())
        assert config["auto_map"] == AUTO_MAP and (run / "model" / "modeling_auxprune.py").is_file()
    site = isolated_site(tmp_path / "site", ["torch", "transformers"])
    assert not (site / "auxprune").exists() and not (site / "accelerate").exists()
    texts, pairs = ["a cat sat on the mat.", "it rains", "no way, said he!"], ["a cat sits.", "it is dry", "yes"]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1",
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    folders = [str(run / "model") for run in runs.values()]
    done = subprocess.run([sys.executable, "-S", "-c", CHILD, json.dumps(folders), json.dumps(texts), json.dumps(pairs)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["imported"] == []
    batch = tokenizer(texts, pairs, padding=True, return_tensors="pt")
    for (name, run), result in zip(runs.items(), child["results"], strict=True):
        assert result["module"].startswith("transformers_modules."), name
        with torch.no_grad():
            expected = models[name](**batch).logits
        assert torch.allclose(torch.tensor(result["logits"]), expected, atol=1e-5), name
        predicted = auxprune.predict(run, texts, pairs)
        assert [p["label"] for p in result["pipeline"]] == [p["label"] for p in predicted], name
        assert [p["score"] for p in result["pipeline"]] == pytest.approx([p["score"] for p in predicted], abs=1e-5), name
    assert models["mpnet"].config.layer_head_ids == [[3], []]  # layer 0 reads head 3's bias row, layer 1 has no attention


def test_modeling_code_needs_no_auxprune_module():
    sources = modeling_sources()
    assert "from .configuration_auxprune import AuxpruneConfig" in sources["modeling_auxprune.py"]
    assert "auxprune.model" not in sources["modeling_auxprune.py"]


REPORT = {
    "status": "ok", "task": "glue/stsb", "target_sparsity": 0.9, "sparsity": 0.8951,
    "params": {"encoder_total": 10646784, "encoder_kept": 1117215, "embeddings": 11918592, "total": 13036000,
               "dense_total": 22713985},
    "structure": {"hidden_kept": 384, "hidden_total": 384,
                  "layers": [{"heads": 2, "ffn_units": 96, "attention_kept": True, "ffn_kept": True},
                             {"heads": 0, "ffn_units": 0, "attention_kept": False, "ffn_kept": False}]},
    "metrics": {"teacher": {"pearson": 0.823, "spearman": 0.82}, "pruned": {"pearson": 0.765, "spearman": 0.76},
                "constant_baseline": {"pearson": 0.0, "spearman": 0.0}, "primary": "pearson", "retained": 0.929},
    "data": {"train_examples": 1000, "dev_examples": 1500},
    "speed": {"batch_size": 16, "seq_len": 61, "dense_latency_ms": 80.1, "pruned_latency_ms": 12.0, "speedup": 6.69,
              "device": "cpu"},
    "config": {"seed": 1, "model": {"name": "minilm"}, "data": {"task": "glue/stsb"}, "prune": {"target_sparsity": 0.9}},
}


def test_model_card_states_task_metrics_structure_latency_and_command():
    card = render(REPORT, "auxprune prune --task glue/stsb --sparsity 0.9 --output runs/stsb")
    assert card.startswith("---\nlibrary_name: transformers\n")
    for text in ("# glue/stsb: minilm pruned to 89.5% sparsity", "| pearson (primary) | 0.8230 | 0.7650 | 0.0000 |",
                 "0.8951 (target 0.9)", "1,117,215 of 10,646,784", "| 2 | 0 | 0 |", "dense teacher 80.1 ms, pruned 12.0 ms (6.69x)",
                 "trust_remote_code=True", "auxprune prune --task glue/stsb --sparsity 0.9 --output runs/stsb",
                 "target_sparsity: 0.9"):
        assert text in card, text
    assert "Trained on 1,000 examples; dev set of 1500." in card
    cut = render({**REPORT, "data": {**REPORT["data"], "train_available": 5749}})
    assert "Trained on 1,000 of the training set's 5,749 examples; dev set of 1500." in cut
    assert command_line(["/x/.venv/bin/auxprune", "prune", "--set", "a=b c"]) == "auxprune prune --set 'a=b c'"
    assert command_line(["/usr/bin/pytest", "-q"]) is None


def test_model_card_sets_the_pruned_model_against_the_untrained_one():
    """A sentence-embedding model on a pair task: the untrained model's own score is a column and a verdict."""
    report = {**REPORT, "head": {"head": "bi"},
              "metrics": {**REPORT["metrics"], "untrained": {"pearson": 0.870, "spearman": 0.867}}}
    card = render(report)
    assert "| metric | dense teacher | pruned | untrained minilm (cosine) | constant predictor |" in card
    assert "| pearson (primary) | 0.8230 | 0.7650 | 0.8700 | 0.0000 |" in card
    assert "scores 0.8700 pearson on the same dev set; the pruned model is **below it**" in card
    above = {**report, "metrics": {**report["metrics"], "untrained": {"pearson": 0.5, "spearman": 0.5}}}
    assert "the pruned model is above it" in render(above)
    assert "untrained" not in render(REPORT)  # no bar where there is none (a cross-encoder's card as before)
