"""Issue 2 benchmark: MiniLM-L6 pruned under the limited-data protocol.

1,000 training examples (seed 1), full dev set, tasks MRPC, STS-B and RTE, target sparsity 0.6
and 0.9, `quick` preset. One dense teacher per task, shared by both sparsities. Resumable: a cell
already in the results file (same task, sparsity, seed, examples and `--set`) is skipped, so a fresh
clone does not redo the committed cells (`--rerun` runs them again); a cell whose run folder holds a
finished report is read, not re-run. Every record carries the command that produced it.

    python bench/prune_limited_data.py            # all cells
    python bench/prune_limited_data.py --tasks glue/rte --sparsities 0.9
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from auxprune.output import write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from prune_cell import TABLE_PRECISION  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# These runs measured the cross-encoder head; pinned since model.head=auto picks the bi-encoder for
# sentence-embedding models on pair tasks (bench/bi_encoder.py), so that rerunning a cell reproduces it.
CROSS = ["--set", "model.head=cross"]
RESULTS = ROOT / "bench" / "results" / "prune_limited_data.json"
WORK = ROOT / "bench" / "work"


DEFAULT_EXAMPLES = 1000


def variant(examples: int, settings: list[str]) -> str:
    """The run-folder suffix of a non-default protocol, so that its cells and teachers are not
    mistaken for the default ones ("" for the default)."""
    if examples == DEFAULT_EXAMPLES and not settings:
        return ""
    return "_" + hashlib.sha1(json.dumps([examples, settings]).encode()).hexdigest()[:8]


def run_cell(task: str, sparsity: float, seed: int, examples: int, settings: list[str]) -> dict:
    suffix = variant(examples, settings)
    name = f"{task.split('/')[-1]}_s{sparsity}_seed{seed}{suffix}"
    out = WORK / name
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report.get("status") == "ok":
        print(f"[skip] {name}: finished earlier", flush=True)
        return report
    teacher = WORK / f"{task.split('/')[-1]}_teacher_seed{seed}{suffix}"
    extra = [x for s in settings for x in ("--set", s)]
    command = [sys.executable, "-m", "auxprune.cli", "prune", "--task", task, "--sparsity", str(sparsity),
               "--max-train-examples", str(examples), "--seed", str(seed), "--output", str(out), "--overwrite", *CROSS, *TABLE_PRECISION, *extra]
    if (teacher / "model.safetensors").is_file():
        command += ["--set", f"teacher.path={teacher}"]
    print(f"[run] {name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)
    report = json.loads(report_path.read_text())
    if not teacher.exists() and (out / "teacher").is_dir():
        os.replace(out / "teacher", teacher)
    return report


def record(task: str, report: dict, teacher_seconds: float | None, seed: int, examples: int, settings: list[str],
           command: str) -> dict:
    metrics = report["metrics"]
    primary = metrics["primary"]
    row = {
        "task": task, "target_sparsity": report["target_sparsity"], "seed": seed, "examples": examples,
        "settings": settings, "command": command, "sparsity": report["sparsity"],
        "primary_metric": primary,
        "teacher": metrics["teacher"], "pruned": metrics["pruned"], "constant_baseline": metrics["constant_baseline"],
        "retained": metrics["retained"],
        "params": report["params"], "structure": report["structure"], "speed": report["speed"],
        "timing_s": {**report["timing"], **({"teacher": teacher_seconds} if teacher_seconds is not None else {})},
    }
    row["targets"] = {
        "sparsity_within_1pt": abs(report["sparsity"] - report["target_sparsity"]) <= 0.01,
        "retained_goal": 0.99 if report["target_sparsity"] <= 0.6 else 0.90,
        "retained_met": metrics["retained"] >= (0.99 if report["target_sparsity"] <= 0.6 else 0.90),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["glue/mrpc", "glue/stsb", "glue/rte"])
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.6, 0.9])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES)
    parser.add_argument("--set", action="append", default=[], help="passed on to auxprune prune --set")
    parser.add_argument("--rerun", action="store_true", help="run cells again even when the results file has them "
                        "(a finished run folder is still read, not re-run)")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/prune_limited_data.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    rows = {key(r): r for r in json.loads(RESULTS.read_text())["results"]} if RESULTS.is_file() else {}
    for task in args.tasks:
        teacher_seconds = None
        for sparsity in args.sparsities:
            cell = (task, sparsity, args.seed, args.examples, tuple(args.set))
            if cell in rows and not args.rerun:
                print(f"[skip] {task} {sparsity} seed {args.seed}: in {RESULTS.relative_to(ROOT)}", flush=True)
                continue
            started = time.time()
            report = run_cell(task, sparsity, args.seed, args.examples, args.set)
            teacher_seconds = report["timing"].get("teacher", teacher_seconds)
            rows[cell] = record(task, report, teacher_seconds, args.seed, args.examples, args.set, command)
            write(rows)
            print(f"[done] {task} {sparsity}: {time.time() - started:.0f}s", flush=True)


def key(row: dict) -> tuple:
    return row["task"], row["target_sparsity"], row["seed"], row["examples"], tuple(row["settings"])


def write(rows: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "protocol": "MiniLM-L6 (all-MiniLM-L6-v2), quick preset, training set limited to --examples "
                    "(stratified, seed), full dev set; one teacher per task shared across sparsities",
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "torch": torch.__version__},
        "results": sorted(rows.values(), key=key),
    }
    write_json(RESULTS, payload)


if __name__ == "__main__":
    main()
