"""bf16 against fp32 on this machine: one training step of MiniLM-L6 (issue 18).

The issue's bf16 benchmark (whole jobs, seeds 1-3) presumes a CPU that multiplies bf16 in hardware
(AVX512-BF16 or AMX). Where the CPU has neither, autocast emulates bf16 and every job would only be
slower; this script measures by how much, on the step that dominates every phase: forward and
backward of a 32 x 64 batch through all-MiniLM-L6-v2 (our encoder, a cross-encoder head), fp32
and `torch.autocast("cpu", torch.bfloat16)` timed alternately so that a busy machine slows both
alike. Adds a record to bench/results/precision_step.json with the command, whether the CPU multiplies
bf16 in hardware, and the load; one record per (CPU kind, threads), so machines of both kinds stay side by side.

    python bench/precision_step.py --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import add_record, machine  # noqa: E402

from auxprune.model.loading import load_for_task, packaged_minilm_path  # noqa: E402
from auxprune.precision import cpu_has_native_bf16  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "precision_step.json"


def step(model, batch: dict, labels: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _ = load_for_task(packaged_minilm_path(), num_labels=2)
    model.train()
    ids = torch.randint(1000, 20000, (args.batch, args.seq_len))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    labels = torch.randint(0, 2, (args.batch,))
    load_before = os.getloadavg()
    for bf16 in (False, True):  # warm-up: first calls pick kernels
        step(model, batch, labels, bf16)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for name in ("fp32", "bf16"):
            times[name].append(round(step(model, batch, labels, name == "bf16"), 3))
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)
    fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    record = {"command": "python bench/precision_step.py " + shlex.join(sys.argv[1:]),
              "model": "all-MiniLM-L6-v2 (auxprune encoder, cross-encoder head)",
              "batch": [args.batch, args.seq_len], "threads": args.threads, "seconds": times,
              "median_s": {"fp32": fp32, "bf16": bf16}, "bf16_over_fp32": round(bf16 / fp32, 2),
              "cpu_multiplies_bf16": cpu_has_native_bf16(), "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "machine": machine()}
    add_record(RESULTS, record, record["command"], lambda r: (r["cpu_multiplies_bf16"], r["threads"]),
               {"what": "forward+backward of one batch, fp32 and bf16 autocast timed alternately (median seconds)"})
    print(f"fp32 {fp32:.2f} s, bf16 {bf16:.2f} s per step: bf16 takes {bf16 / fp32:.1f}x "
          f"({'bf16 in hardware' if record['cpu_multiplies_bf16'] else 'emulated: no AVX512-BF16 or AMX'}) -> {RESULTS}")


if __name__ == "__main__":
    main()
