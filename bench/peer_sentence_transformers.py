"""A peer tool's answer to the same question: MiniLM-L6 fine-tuned by sentence-transformers itself.

A user with all-MiniLM-L6-v2 and 1,000 labelled pairs who does not prune anything fine-tunes it with the
library its authors ship, following its own examples: the STS benchmark's "continue training" recipe
(CosineSimilarityLoss on the gold score scaled to 0-1, 4 epochs, batch 16, 10% warm-up, the trainer's default
learning rate 5e-5), and for binary pair tasks (MRPC paraphrases, RTE entailment) the duplicate-questions
example's OnlineContrastiveLoss (cosine distance, margin 0.5) on the same schedule, with the class the untrained
model already puts closer as the "similar" one (`similar_class`). This is the row the
size-matched tables (bench/size_matched.py, bench/size_sweep.py) set beside auxprune's own fine-tuned MiniLM-L6
("MiniLM-L6 dense"): if the library's plain recipe did better, auxprune's dense rows would understate the
alternative.

Same protocol as those rows: the same 1,000 training examples (auxprune's stratified subsample for the seed),
the full dev set, 128 tokens, and the same scorer as the untrained bar (`baselines.untrained_cosine_score`: the
dev Pearson of the cosine on STS-B; on binary tasks a cosine threshold fit on the training pairs, then dev
accuracy). Each cell also scores the untrained model that way, which must equal the tables' "untrained
MiniLM-L6". Needs `datasets` (sentence-transformers' trainer reads it): `pip install -e '.[bench]'`.

    python bench/peer_sentence_transformers.py --tasks glue/stsb glue/mrpc glue/rte --seeds 1 2 3 --threads 1
    python bench/peer_sentence_transformers.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import ROOT, add_record, display, machine  # noqa: E402

from auxprune.baselines import untrained_cosine_score  # noqa: E402
from auxprune.config import build_config  # noqa: E402
from auxprune.data.tasks import TaskData  # noqa: E402
from auxprune.model.loading import load_for_task, resolve_model_path  # noqa: E402
from auxprune.pipeline import load_data  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "peer_sentence_transformers.json"
WORK = ROOT / "bench" / "work" / "peer_sentence_transformers"
TASKS = ("glue/stsb", "glue/mrpc", "glue/rte")
EXAMPLES = 1000
MAX_SEQ_LEN = 128
# sentence-transformers' examples/training/sts/training_stsbenchmark_continue_training.py: epochs, batch size and
# warm-up; the learning rate is the trainer's default, which that example keeps.
RECIPE = {"num_train_epochs": 4, "per_device_train_batch_size": 16, "warmup_ratio": 0.1, "learning_rate": 5e-5}
CONTRASTIVE_MARGIN = 0.5  # OnlineContrastiveLoss's default, as the duplicate-questions example uses it


def task_data(task: str, seed: int) -> TaskData:
    """The task as an auxprune run of this seed sees it: its 1,000-example training subsample, the full dev set."""
    config = build_config(overrides=[{"data": {"task": task, "max_train_examples": EXAMPLES}, "seed": seed}])
    data, _ = load_data(config)
    return data


def loss_name(data: TaskData) -> str:
    return "CosineSimilarityLoss" if data.spec.kind == "regression" else "OnlineContrastiveLoss"


def training_rows(data: TaskData, similar_class: int | None = 1) -> dict[str, list]:
    """The pairs as the loss reads them: a regression score scaled to 0-1 by the training labels' range (STS-B 0-5);
    a binary label as 1 for the class whose pairs should be close (`similar_class`), else 0."""
    labels = [e.label for e in data.train]
    if data.spec.kind == "regression":
        low, high = min(labels), max(labels)
        labels = [(y - low) / (high - low) for y in labels]
    else:
        labels = [int(int(y) == similar_class) for y in labels]
    return {"sentence1": [e.text_a for e in data.train], "sentence2": [e.text_b for e in data.train], "label": labels}


def similar_class(untrained: dict) -> int:
    """The class whose pairs the untrained model already puts closer (the direction its threshold fit found): the
    one a contrastive loss should pull together. MRPC's paraphrases are class 1; RTE's entailed pairs are class 0
    (its labels are entailment, not_entailment), and training them apart taught the model against its prior
    (measured: dev accuracy 43.3, below the constant predictor)."""
    return 1 if untrained["class1_above"] else 0


def fine_tune(data: TaskData, seed: int, out: Path, similar: int | None) -> float:
    """Fine-tune all-MiniLM-L6-v2 with sentence-transformers' trainer; save to `out`; the seconds it took."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, losses
    from sentence_transformers.trainer import SentenceTransformerTrainer
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    model = SentenceTransformer(str(resolve_model_path("minilm")), device="cpu")
    model.max_seq_length = MAX_SEQ_LEN
    if data.spec.kind == "regression":
        loss = losses.CosineSimilarityLoss(model)
    else:
        loss = losses.OnlineContrastiveLoss(model, margin=CONTRASTIVE_MARGIN)
    with tempfile.TemporaryDirectory() as scratch:
        args = SentenceTransformerTrainingArguments(output_dir=scratch, seed=seed, save_strategy="no", report_to="none",
                                                    logging_steps=50, use_cpu=True, **RECIPE)
        trainer = SentenceTransformerTrainer(model=model, args=args, loss=loss,
                                             train_dataset=Dataset.from_dict(training_rows(data, similar)))
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    model.save(str(out))
    return seconds


def cosine_score(path: Path, data: TaskData) -> dict:
    """The untrained bar's scorer on the model in `path`."""
    model, tokenizer = load_for_task(path, num_labels=data.spec.num_labels, max_seq_len=MAX_SEQ_LEN)
    model.eval()
    return untrained_cosine_score(model.encoder, tokenizer, data.spec, data.train, data.dev, MAX_SEQ_LEN)


def key(r: dict) -> tuple:
    return r["task"], r["seed"]


def records() -> list[dict]:
    return json.loads(RESULTS.read_text()).get("records", []) if RESULTS.is_file() else []


def header() -> dict:
    return {"protocol": f"all-MiniLM-L6-v2 fine-tuned by sentence-transformers' trainer, {EXAMPLES:,} training examples "
                        f"(auxprune's subsample for the seed), full dev set, {MAX_SEQ_LEN} tokens; recipe {RECIPE}; "
                        "CosineSimilarityLoss (regression, labels scaled to 0-1) or OnlineContrastiveLoss (binary, "
                        f"margin {CONTRASTIVE_MARGIN}, the class the untrained model puts closer as similar); scored as the untrained bar is (cosine; a threshold fit on the "
                        "training pairs for accuracy)",
            "machine": machine()}


def run(tasks: list[str], seeds: list[int], threads: int | None, command: str) -> None:
    if threads:
        torch.set_num_threads(threads)
    done = {key(r) for r in records()}
    for seed in seeds:
        for task in tasks:
            name = f"{task.split('/')[-1]}_seed{seed}"
            if (task, seed) in done:
                print(f"[skip] {name}: in {RESULTS.name}", flush=True)
                continue
            data = task_data(task, seed)
            out = WORK / name
            untrained = cosine_score(resolve_model_path("minilm"), data)
            similar = similar_class(untrained) if data.spec.kind == "classification" else None
            seconds = fine_tune(data, seed, out, similar)
            tuned = cosine_score(out, data)
            primary = data.spec.primary_metric
            row = {"task": task, "seed": seed, "metric_name": primary, "loss": loss_name(data), "similar_class": similar,
                   "fine_tuned": tuned["metrics"][primary], "untrained": untrained["metrics"][primary],
                   "metrics": tuned["metrics"], "method": tuned["method"], "train_examples": len(data.train),
                   "dev_examples": len(data.dev), "train_s": round(seconds, 1), "threads": threads,
                   "model_dir": display(out), "command": command}
            add_record(RESULTS, row, command, key, header())
            print(f"[done] {name}: {primary} {row['fine_tuned']:.4f} (untrained {row['untrained']:.4f}, "
                  f"{seconds:.0f}s)", flush=True)


def scores(task: str) -> list[float]:
    """The fine-tuned model's dev scores on `task`, one per seed recorded."""
    return [r["fine_tuned"] for r in records() if r["task"] == task]


def table(rows: list[dict]) -> str:
    lines = ["| task | seeds | untrained MiniLM-L6 | MiniLM-L6 fine-tuned by sentence-transformers | loss | seconds |",
             "|---|---|---|---|---|---|"]
    for task in TASKS:
        cells = sorted((r for r in rows if r["task"] == task), key=lambda r: r["seed"])
        if not cells:
            continue
        tuned, untrained = [100 * r["fine_tuned"] for r in cells], [100 * r["untrained"] for r in cells]
        lines.append(f"| {task} ({cells[0]['metric_name']}) | {', '.join(str(r['seed']) for r in cells)} "
                     f"| {mean_sd(untrained)} | {mean_sd(tuned)} | {cells[0]['loss']} "
                     f"| {statistics.mean(r['train_s'] for r in cells):.0f} |")
    return "\n".join(lines)


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=None, help="torch threads; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the table from the results file, run nothing")
    args = parser.parse_args(argv)
    if not args.table:
        run(args.tasks, args.seeds, args.threads,
            "python bench/peer_sentence_transformers.py " + shlex.join(argv if argv is not None else sys.argv[1:]))
    print(table(records()))


if __name__ == "__main__":
    main()
