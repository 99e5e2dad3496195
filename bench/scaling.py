"""2 processes x 1 thread against 1 process x 2 threads on the same prune job (issue 18).

Runs the job once each way (or as `--layouts` says), as real `auxprune prune` commands, and writes
the wall time, the per-phase times from report.json and the dev metrics to
bench/results/scaling.json with the exact commands and the machine's load when each started.
The global batch is the same (train.batch_size) either way, so the runs should agree in metric;
what differs is how the 2 cores are used (threads inside each matrix product, or one batch slice
per process plus a gradient all-reduce per step).

    AUXPRUNE_DATA_DIR=/work/shared/data python bench/scaling.py
    AUXPRUNE_DATA_DIR=/work/shared/data python bench/scaling.py --append --layouts 2x1 1x2   # a repeat
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from prune_cell import TABLE_PRECISION  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work" / "scaling"
RESULTS = ROOT / "bench" / "results" / "scaling.json"
JOB = ["--task", "glue/stsb", "--sparsity", "0.6", "--max-train-examples", "200", "--seed", "1",
       "--set", "teacher.epochs=1", "--set", "prune.epochs=2", "--set", "finetune.epochs=1",
       "--set", "train.min_epoch_examples=0", "--set", "data.max_dev_examples=200", "--set", "train.checkpoint_every=0",
       # measured with the cross-encoder head (the default then); pinned since model.head=auto picks the bi-encoder
       "--set", "model.head=cross", *TABLE_PRECISION]
LAYOUTS = {"1x2": (1, 2), "2x1": (2, 1)}  # processes x threads per process


def command(layout: str, out: Path) -> tuple[list[str], dict[str, str]]:
    processes, threads = LAYOUTS[layout]
    args = [sys.executable, "-m", "auxprune", "prune", *JOB, "--set", f"train.threads={threads}", "--output", str(out),
            "--overwrite"]
    if processes > 1:
        args += ["--processes", str(processes)]
    return args, {"OMP_NUM_THREADS": str(threads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS), help="in this order")
    parser.add_argument("--append", action="store_true", help="keep the rows already in the results file (a repeat)")
    args = parser.parse_args()
    rows = json.loads(RESULTS.read_text(encoding="utf-8"))["rows"] if args.append and RESULTS.is_file() else []
    for layout in args.layouts:
        out = WORK / layout
        cmd, env = command(layout, out)
        load, started = os.getloadavg()[0], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        start = time.perf_counter()
        done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{layout}: failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        rows.append({"layout": layout, "started": started, "processes": report["processes"], "threads_per_process": LAYOUTS[layout][1],
                     "command": " ".join(f"{k}={v}" for k, v in env.items()) + " " + shlex.join(["python", *cmd[1:]]).replace(f"{ROOT}/", ""),
                     "wall_s": round(wall, 1), "timing_s": report["timing"], "steps": {
                         k: v["steps"] for k, v in report["schedule"]["phases"].items() if v},
                     "metrics": report["metrics"]["pruned"], "teacher_metrics": report["metrics"]["teacher"],
                     "sparsity": report["sparsity"], "load_average_at_start": round(load, 2)})
        print(f"{layout}: {wall:.0f} s, pruned {report['metrics']['pruned']}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "job": "MiniLM-L6 (minilm), glue/stsb, target sparsity 0.6, 200 training examples, 200 dev examples, "
               "batch 32 (global), teacher 1 + prune 2 + fine-tune 1 epochs",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "note": "the machine is shared: another benchmark and another session ran on the same 2 cores during these "
                "runs (load_average_at_start), and these ran under nice -n 10, so the times are rough; the metrics do "
                "not depend on the load. With dropout on, the processes draw their own dropout masks (and from then "
                "on their own gate noise), so 2x1 is a different random draw of the same job, not the same numbers",
        "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
