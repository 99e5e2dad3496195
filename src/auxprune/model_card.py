"""The model card (README.md) a prune job writes into its model folder, as Hugging Face model repositories have.

It states what the folder is (task, base model, sparsity and structure), what it measured (dev
metrics of the dense teacher and of the pruned model, latency), how to use it with transformers
alone, and how it was made (the command, the resolved config). Everything comes from the run's
report; `write_model_card(output / "model", report)` is the job's one call.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml


def command_line(argv: list[str] | None = None) -> str | None:
    """The `auxprune ...` command this process runs, when it was started as the auxprune command."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return None
    name = Path(argv[0]).name
    if name == "auxprune" or (name in ("cli.py", "__main__.py") and Path(argv[0]).parent.name == "auxprune"):
        return "auxprune " + shlex.join(argv[1:])
    return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def render(report: dict, command: str | None = None) -> str:
    config = report.get("config", {})
    model_name = config.get("model", {}).get("name", "?")
    task, metrics = report["task"], report["metrics"]
    primary = metrics.get("primary")
    params, structure, speed = report["params"], report["structure"], report.get("speed", {})
    data = report.get("data", {})
    bi = (report.get("head") or {}).get("head") == "bi"
    lines = [
        "---",
        f"library_name: {'sentence-transformers' if bi else 'transformers'}",
        f"pipeline_tag: {'sentence-similarity' if bi else 'text-classification'}",
        "tags: [auxprune, pruned, structured-pruning]",
        "---",
        "",
        f"# {task}: {model_name} pruned to {report['sparsity']:.1%} sparsity",
        "",
        f"A task-specific encoder pruned with auxprune from `{model_name}` for `{task}`: "
        "hard-concrete gates over attention heads and FFN units (CoFi), distilled from a fine-tuned dense "
        "teacher, cut to a physically smaller model, then fine-tuned. "
        f"Trained on {trained_on(data)}; dev set of {data.get('dev_examples', '?')}.",
        "",
        "## Dev metrics",
        "",
    ]
    untrained = metrics.get("untrained") or {}
    bars = [("constant predictor", metrics.get("constant_baseline") or {})]
    if untrained:  # a sentence-embedding model on a pair task: the base model used as it is, the bar to clear
        bars.insert(0, (f"untrained {model_name} (cosine)", untrained))
    reference = report.get("reference_score")
    if reference:  # the model it was set beside (its size or its speed), used as it is
        bars.insert(len(bars) - 1, (f"{reference['model']} as is (cosine)", reference["metrics"]))
    lines += ["| metric | dense teacher | pruned | " + " | ".join(name for name, _ in bars) + " |",
              "|---|---|---|" + "---|" * len(bars)]
    for name, value in metrics["pruned"].items():
        mark = " (primary)" if name == primary else ""
        lines.append(f"| {name}{mark} | {_fmt(metrics['teacher'].get(name))} | {_fmt(value)} | "
                     + " | ".join(_fmt(bar.get(name)) for _, bar in bars) + " |")
    if metrics.get("retained") is not None:
        lines += ["", f"The pruned model keeps {metrics['retained']:.1%} of the teacher's {primary}."]
    if untrained.get(primary) is not None and metrics["pruned"].get(primary) is not None:
        how = "the cosine of its embeddings" + (", with a threshold fit on the training pairs" if "accuracy" in untrained else "")
        verdict = ("**below it** (at a fraction of its size and cost)" if metrics["pruned"][primary] < untrained[primary]
                   else "above it")
        lines += ["", f"Used as it is ({how}), the untrained `{model_name}` scores {_fmt(untrained[primary])} {primary} "
                      f"on the same dev set; the pruned model is {verdict}."]
    if reference and reference["metrics"].get(primary) is not None and metrics["pruned"].get(primary) is not None:
        verdict = "**below it**" if metrics["pruned"][primary] < reference["metrics"][primary] else "above it"
        lines += ["", f"`{reference['model']}`, the model it was set beside, scores {_fmt(reference['metrics'][primary])} "
                      f"{primary} used as it is (the cosine of its embeddings, no training); the pruned model is {verdict}."]
    lines += [
        "",
        "## Size and structure",
        "",
        f"- Sparsity of the encoder layers (attention and FFN weights and biases): {report['sparsity']:.4f} "
        f"(target {report['target_sparsity']}); {params['encoder_kept']:,} of {params['encoder_total']:,} parameters kept.",
        f"- All parameters (embeddings and task head included): {params['total']:,} (dense: {params['dense_total']:,}).",
        f"- Hidden size kept: {structure['hidden_kept']} of {structure['hidden_total']}.",
        "",
        "| layer | attention heads | FFN units |",
        "|---|---|---|",
    ]
    for index, layer in enumerate(structure["layers"], start=1):
        lines.append(f"| {index} | {layer['heads']} | {layer['ffn_units']} |")
    if speed:
        lines += [
            "",
            "## Latency",
            "",
            f"One forward pass of a training batch ({speed['batch_size']} x {speed['seq_len']} tokens), PyTorch on "
            f"{speed.get('device', 'cpu')}, median of 5: dense teacher {speed['dense_latency_ms']} ms, pruned "
            f"{speed['pruned_latency_ms']} ms ({speed['speedup']}x). `auxprune bench` measures more shapes and runtimes.",
        ]
        if speed.get("reference"):
            ref = speed["reference"]
            whose = ", whose encoder size it was pruned to" if ref.get("sized_to", True) else ""
            lines[-1] += (f" Beside {ref['model']}{whose} (timed on the same batch): "
                          f"{ref['pruned_latency_ms']} ms against {ref['latency_ms']} ms ({ref['speedup']}x its speed).")
    if bi:
        lines += [
            "",
            "## Use as a sentence encoder",
            "",
            "A bi-encoder: each sentence is encoded on its own (mean of its token states, as trained) and pairs are "
            "compared by cosine similarity. With sentence-transformers (the modeling code is in this folder):",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            'model = SentenceTransformer("PATH/TO/THIS/FOLDER", trust_remote_code=True)',
            'embeddings = model.encode(["A man plays a guitar.", "Someone plays music."])  # unit length',
            "print(embeddings[0] @ embeddings[1])  # cosine similarity",
            "```",
            "",
            "With auxprune: `auxprune embed FOLDER texts.txt --output vectors.npy`, "
            "`auxprune predict FOLDER \"text\" \"pair\"` (the pair's score and cosine).",
        ]
    lines += [
        "",
        "## Use",
        "",
        "With torch and transformers only (the modeling code is in this folder):",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline",
        "",
        'model = AutoModelForSequenceClassification.from_pretrained("PATH/TO/THIS/FOLDER", trust_remote_code=True)',
        'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER", trust_remote_code=True)  # reads config.json too',
        'pipe = pipeline("text-classification", model="PATH/TO/THIS/FOLDER", trust_remote_code=True)',
        "```",
        "",
        "With auxprune: `auxprune.load(FOLDER)`, `auxprune.predict(FOLDER, texts, pairs)`, "
        "`auxprune export FOLDER --onnx model.int8.onnx --int8`.",
        "",
        "## How it was made",
        "",
    ]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += ["The resolved configuration (`auxprune prune --config THIS.yaml --output NEW` runs it again):", "",
              "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, report: dict, command: str | None = None) -> Path:
    """Write `folder/README.md` from a finished run's report; `command` defaults to this process's command line."""
    from auxprune.output import atomic_write_text

    path = Path(folder) / "README.md"
    atomic_write_text(path, render(report, command if command is not None else command_line()))
    return path


def trained_on(data: dict) -> str:
    """The training examples, and the set they were cut from where the run used part of it."""
    used, available = data.get("train_examples"), data.get("train_available")
    if used is None:
        return "? examples"
    if available is not None and available > used:
        return f"{used:,} of the training set's {available:,} examples"
    return f"{used:,} examples"
