"""Inference speed of pruned runs against their dense teachers: PyTorch and onnxruntime on the CPU.

For every run folder: batch sizes 1, 8, 32 x sequence lengths 32, 128 x runtimes torch and
onnxruntime, 2 threads, pruned and dense model timed alternately in one process on the same
random-token batch (see `auxprune.speed`). Results go to bench/results/speed.json with the exact
command. Resumable: a row already in the results file (same run, runtime, batch size, sequence
length and threads) is kept and not re-measured; pass --force to measure again.

Run it on an otherwise idle machine: other jobs on the same cores distort every number.

    python bench/speed.py                                   # the two STS-B runs of bench/prune_limited_data.py
    python bench/speed.py --runs bench/work/rte_s0.9_seed1 --batch-sizes 1 --seq-lens 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import torch

from auxprune.output import write_json

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "speed.json"
DEFAULT_RUNS = [WORK / "stsb_s0.6_seed1", WORK / "stsb_s0.9_seed1"]


def baseline_for(run: Path) -> Path | None:
    """The run's dense teacher: RUN/teacher, the report's teacher.path, or the shared
    `<task>_teacher_seed<seed>` folder that bench/prune_limited_data.py moves teachers to."""
    from auxprune.speed import default_baseline

    found = default_baseline(run)
    if found is not None:
        return found
    match = re.fullmatch(r"(.+?)_s[0-9.]+_seed(\d+).*", run.name)  # also variants with a suffix
    if match:
        shared = run.parent / f"{match.group(1)}_teacher_seed{match.group(2)}"
        if (shared / "config.json").is_file():
            return shared
    return None


def row_key(row: dict) -> tuple:
    return (row["run"], row["runtime"], row["batch_size"], row["seq_len"], row["threads"])


def load_rows(path: Path) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    return {row_key(r): r for r in json.loads(path.read_text(encoding="utf-8")).get("rows", [])}


def write(path: Path, rows: dict[tuple, dict], command: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    payload = {
        "command": command,
        "protocol": "CPU; pruned and dense baseline in one process on the same random-token batch (no padding), "
                    "warm-up then alternating timed calls (onnxruntime: thread spinning off, two sessions share the cores); latency per batch, throughput in examples/s; "
                    "speedup = baseline p50 / pruned p50; flops_speedup from auxprune.speed.forward_flops",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "rows": sorted(rows.values(), key=lambda r: (r["run"], r["runtime"], r["batch_size"], r["seq_len"], r["threads"])),
    }
    write_json(path, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, default=DEFAULT_RUNS, help="run folders (each holding model/)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seq-lens", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--runtimes", nargs="+", choices=["torch", "onnxruntime"], default=["torch", "onnxruntime"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30, help="timed calls per model, at least")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timing per row, at least")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--force", action="store_true", help="measure rows again even if already recorded")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "bench/speed.py", *(sys.argv[1:] if argv is None else argv)])

    from auxprune.errors import UserError
    from auxprune.speed import Bench

    rows = load_rows(args.output)
    missing = [run for run in args.runs if not ((run / "model" / "config.json").is_file() or (run / "config.json").is_file())]
    if missing:
        print(f"speed.py: no saved model in {', '.join(map(str, missing))} (run bench/prune_limited_data.py first)",
              file=sys.stderr)
        return 2
    for run in args.runs:
        name = str(run.resolve().relative_to(ROOT)) if run.resolve().is_relative_to(ROOT) else str(run.resolve())
        todo = [(rt, b, l) for rt in args.runtimes for b in args.batch_sizes for l in args.seq_lens
                if args.force or (name, rt, b, l, args.threads) not in rows]
        if not todo:
            print(f"[skip] {name}: all rows recorded", flush=True)
            continue
        baseline = baseline_for(run)
        try:
            with Bench(run, baseline, threads=args.threads, baseline_source="run teacher") as bench:
                for runtime, batch, seq_len in todo:
                    started = time.perf_counter()
                    row = bench.run(runtime, batch, seq_len, warmup=args.warmup, iterations=args.iterations,
                                    min_time=args.min_time)
                    row["run"] = name
                    rows[row_key(row)] = row
                    write(args.output, rows, command)
                    print(f"[done] {name} {runtime} b{batch} L{seq_len}: speed-up {row['speedup']:.2f}x "
                          f"(FLOPs {row['flops_speedup']:.2f}x), {time.perf_counter() - started:.1f}s", flush=True)
        except UserError as err:
            print(f"speed.py: {name}: {err}", file=sys.stderr)
            return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
