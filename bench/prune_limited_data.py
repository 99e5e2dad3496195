"""Issue 2 benchmark: MiniLM-L6 pruned under the limited-data protocol.

1,000 training examples (seed 1), full dev set, tasks MRPC, STS-B and RTE, target sparsity 0.6
and 0.9, `quick` preset. One dense teacher per task, shared by both sparsities. Resumable: a cell
whose run folder holds a finished report is read, not re-run.

    python bench/prune_limited_data.py            # all cells
    python bench/prune_limited_data.py --tasks glue/rte --sparsities 0.9
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from auxprune.output import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "prune_limited_data.json"
WORK = ROOT / "bench" / "work"


def run_cell(task: str, sparsity: float, seed: int, examples: int, extra: list[str]) -> dict:
    name = f"{task.split('/')[-1]}_s{sparsity}_seed{seed}"
    out = WORK / name
    report_path = out / "report.json"
    if report_path.is_file() and json.loads(report_path.read_text()).get("status") == "ok":
        print(f"[skip] {name}: finished earlier", flush=True)
        return json.loads(report_path.read_text())
    teacher = WORK / f"{task.split('/')[-1]}_teacher_seed{seed}"
    command = [sys.executable, "-m", "auxprune.cli", "prune", "--task", task, "--sparsity", str(sparsity),
               "--max-train-examples", str(examples), "--seed", str(seed), "--output", str(out), "--overwrite", *extra]
    if (teacher / "model.safetensors").is_file():
        command += ["--set", f"teacher.path={teacher}"]
    print(f"[run] {name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)
    report = json.loads(report_path.read_text())
    if not teacher.exists() and (out / "teacher").is_dir():
        os.replace(out / "teacher", teacher)
    return report


def record(task: str, report: dict, teacher_seconds: float | None) -> dict:
    metrics = report["metrics"]
    primary = metrics["primary"]
    row = {
        "task": task, "target_sparsity": report["target_sparsity"], "sparsity": report["sparsity"],
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
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], help="passed on to auxprune prune --set")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    extra = [x for s in args.set for x in ("--set", s)]
    existing = json.loads(RESULTS.read_text())["results"] if RESULTS.is_file() else []
    rows = {(r["task"], r["target_sparsity"]): r for r in existing}
    for task in args.tasks:
        teacher_seconds = None
        for sparsity in args.sparsities:
            started = time.time()
            report = run_cell(task, sparsity, args.seed, args.examples, extra)
            teacher_seconds = report["timing"].get("teacher", teacher_seconds)
            rows[(task, sparsity)] = record(task, report, teacher_seconds)
            write(rows, args)
            print(f"[done] {task} {sparsity}: {time.time() - started:.0f}s", flush=True)


def write(rows: dict, args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python bench/prune_limited_data.py " + " ".join(
            [f"--tasks {' '.join(args.tasks)}", f"--sparsities {' '.join(map(str, args.sparsities))}",
             f"--seed {args.seed}", f"--examples {args.examples}"] + [f"--set {s}" for s in args.set]),
        "protocol": "MiniLM-L6 (all-MiniLM-L6-v2), quick preset, training set limited to --examples "
                    "(stratified, seed), full dev set; one teacher per task shared across sparsities",
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "torch": torch.__version__},
        "results": sorted(rows.values(), key=lambda r: (r["task"], r["target_sparsity"])),
    }
    write_json(RESULTS, payload)


if __name__ == "__main__":
    main()
