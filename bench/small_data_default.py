"""Issue 16's small-data cells with today's default settings, beside the learning curve.

Since issue 19, `model.head=auto` picks the bi-encoder for all-MiniLM-L6-v2 on a pair task, so a new
user with 100 or 300 STS-B or MRPC pairs gets that. These cells measure it: MiniLM-L6, sparsity 0.9,
default settings, no auxiliary task, the `--max-train-examples` given: bench/learning_curve.py's
baseline command, so the learning curve reads these records as its baseline cells (source
small_data_default.json) instead of running them again.

Resumable: a cell whose run folder has a finished report is read, not run. Results:
bench/results/small_data_default.json (one record per cell, with its command).

    python bench/small_data_default.py --cells glue/stsb:300 glue/mrpc:300 glue/stsb:100 glue/mrpc:100 --threads 1
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prune_cell import TABLE_PRECISION, TABLE_SCHEDULE, run_prune  # noqa: E402
from results_file import add_record, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "small_data_default.json"
WORK = ROOT / "bench" / "work" / "small_data_default"
SPARSITY = 0.9


def run_cell(task: str, examples: int, seed: int, threads: int | None) -> tuple[dict, str]:
    out = WORK / f"{task.split('/')[-1]}_n{examples}_seed{seed}"
    command = ["auxprune", "prune", "--task", task, "--sparsity", str(SPARSITY), "--max-train-examples", str(examples),
               "--seed", str(seed), "--output", str(out.relative_to(ROOT)), "--overwrite", *TABLE_SCHEDULE,
               *TABLE_PRECISION]
    # no cell name printed, no [skip] line; the environment as it is (no data folder default, no OMP_NUM_THREADS)
    report, _, _ = run_prune(out, command, threads, env=os.environ)
    return report, shlex.join(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", required=True, help="TASK:EXAMPLES, e.g. glue/stsb:300")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    script = shlex.join(["python", "bench/small_data_default.py", *sys.argv[1:]])
    for seed in args.seeds:
        for cell in args.cells:
            task, examples = cell.rsplit(":", 1)
            report, command = run_cell(task, int(examples), seed, args.threads)
            m = report["metrics"]
            primary = m["primary"]
            row = {"task": task, "examples": int(examples), "train_examples": report["data"]["train_examples"],
                   "seed": seed, "head": report["head"]["head"], "metric_name": primary,
                   "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
                   "untrained": (m.get("untrained") or {}).get(primary), "constant": m["constant_baseline"][primary],
                   "retained": m["retained"], "measured_sparsity": report["sparsity"],
                   "warnings": report["warnings"], "timing_s": report["timing"], "command": command}
            add_record(RESULTS, row, script, lambda r: (r["task"], r["examples"], r["seed"]), {
                "protocol": f"MiniLM-L6 (all-MiniLM-L6-v2), default settings (quick preset, model.head=auto) with 6 "
                            f"pruning epochs (bench/prune_cell.py TABLE_SCHEDULE), "
                            f"sparsity {SPARSITY}, no auxiliary task, full dev set",
                "machine": machine(), "note": "2 cores shared with other benchmark runs: compare metrics, not times"})
            print(f"[done] {task} n={examples} seed {seed} ({row['head']}): teacher {row['teacher']:.4f} pruned "
                  f"{row['pruned']:.4f}, untrained {row['untrained']}", flush=True)


if __name__ == "__main__":
    main()
