"""bf16 against fp32 over whole jobs: does mixed precision keep the metric, and what does it save?

bench/precision_step.py times one training step; a user's question is the whole run. Each cell is the
README's main job with today's defaults (MiniLM-L6, 1,000 training examples, `model.head=auto`, the
12-epoch pruning schedule), its own teacher trained in the same run, at one precision
(`train.precision`). The two precisions of a (task, sparsity, seed) are best run side by side
(`--precisions fp32 bf16` with two runners, or both on one machine in turn) so that a busy machine
slows both alike; each record keeps its phases' seconds and the load when it started. bf16 pays
only where the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX): each record says whether this
one does.

Resumable: a cell whose run folder has a finished report is read, not run; an interrupted one resumes.
Results: bench/results/precision_job.json (one record per cell, with its command).

    python bench/precision_job.py --cells glue/stsb:0.6 glue/mrpc:0.9 --precisions bf16 fp32 --threads 1
    python bench/precision_job.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prune_cell import run_prune  # noqa: E402
from results_file import add_record, machine  # noqa: E402

from auxprune.precision import cpu_has_native_bf16  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "precision_job.json"
WORK = ROOT / "bench" / "work" / "precision_job"
BI_RECIPE = ROOT / "bench" / "results" / "bi_recipe.json"
EXAMPLES = 1000
PRECISIONS = ("fp32", "bf16")


def cell_name(task: str, sparsity: float, precision: str, seed: int) -> str:
    return f"{task.split('/')[-1]}_s{sparsity}_{precision}_seed{seed}"


def run_cell(task: str, sparsity: float, precision: str, seed: int, threads: int | None) -> dict:
    out = WORK / cell_name(task, sparsity, precision, seed)
    command = ["auxprune", "prune", "--task", task, "--sparsity", str(sparsity), "--max-train-examples", str(EXAMPLES),
               "--seed", str(seed), "--output", str(out.relative_to(ROOT)), "--overwrite",
               "--set", f"train.precision={precision}"]
    load = [round(x, 2) for x in os.getloadavg()]
    report, wall, ran = run_prune(out, command, threads, out.name)
    m = report["metrics"]
    primary = m["primary"]
    return {"task": task, "sparsity": sparsity, "precision": precision, "seed": seed, "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "untrained": (m.get("untrained") or {}).get(primary), "measured_sparsity": report["sparsity"],
            "head": report["head"]["head"], "timing_s": report["timing"], "wall_s": wall,
            "load_average_at_start": load if ran else None, "threads": threads,
            "cpu_multiplies_bf16": cpu_has_native_bf16(), "warnings": report.get("warnings", []),
            "command": shlex.join(command)}


def key(r: dict) -> tuple:
    return r["task"], r["sparsity"], r["seed"], PRECISIONS.index(r["precision"])


def recorded_fp32(path: Path = BI_RECIPE) -> dict[tuple, dict]:
    """bench/bi_recipe.py's `prune_x2` cells of MiniLM-L6, keyed like this file's fp32 cells: the same recipe in fp32
    (12 pruning epochs, the default bi-encoder head, a teacher trained with the same settings and read through
    `teacher.path`), measured on another machine."""
    if not path.is_file():
        return {}
    return {(r["task"], r["sparsity"], r["seed"]): r for r in json.loads(path.read_text())["records"]
            if r.get("variant") == "prune_x2" and r.get("model", "minilm") == "minilm"}


def table(records: list[dict], reference: dict[tuple, dict]) -> str:
    """One row per cell, the bf16 row with its time as a share of the fp32 cell's of the same seed, and
    bi_recipe.json's fp32 cell of the seed as a reference row; then the mean pruned metric per precision."""
    lines = ["| task | sparsity | seed | precision | teacher | pruned | teacher s | prune s | fine-tune s | total s "
             "| bf16 / fp32 time |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {key(r): r for r in records}
    cells = sorted({(r["task"], r["sparsity"], r["seed"]) for r in records})
    for cell in cells:
        for r in (by_key[k] for k in sorted(by_key) if k[:3] == cell):
            t = r["timing_s"]
            fp32 = by_key.get((*cell, 0))
            ratio = f"{t['total'] / fp32['timing_s']['total']:.2f}x" if r["precision"] == "bf16" and fp32 else ""
            lines.append(f"| {r['task']} ({r['metric_name']}) | {r['sparsity']} | {r['seed']} | {r['precision']} "
                         f"| {100 * r['teacher']:.1f} | {100 * r['pruned']:.1f} | {t.get('teacher', 0.0):.0f} "
                         f"| {t.get('prune', 0.0):.0f} | {t.get('finetune', 0.0):.0f} | {t['total']:.0f} | {ratio} |")
        if cell in reference:
            r = reference[cell]
            lines.append(f"| {r['task']} | {r['sparsity']} | {r['seed']} | fp32, bi_recipe.json (another machine) "
                         f"| {100 * r['teacher']:.1f} | {100 * r['pruned']:.1f} |  |  |  |  |  |")
    lines.append("")
    for task, sparsity in sorted({c[:2] for c in cells}):
        seeds = sorted(c[2] for c in cells if c[:2] == (task, sparsity))
        means = []
        for name, rows in (("bf16", [by_key.get((task, sparsity, s, 1)) for s in seeds]),
                           ("fp32 here", [by_key.get((task, sparsity, s, 0)) for s in seeds]),
                           ("fp32 bi_recipe.json", [reference.get((task, sparsity, s)) for s in seeds])):
            values = [100 * r["pruned"] for r in rows if r is not None]
            if values:
                means.append(f"{name} {statistics.mean(values):.1f} ({len(values)} seed{'s' if len(values) > 1 else ''})")
        lines.append(f"- {task} {sparsity}, pruned, mean over seeds {', '.join(map(str, seeds))}: {'; '.join(means)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["glue/stsb:0.6"], help="TASK:SPARSITY, e.g. glue/mrpc:0.9")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the README table, run nothing")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text())["records"], recorded_fp32()))
        return
    script = shlex.join(["python", "bench/precision_job.py", *sys.argv[1:]])
    for seed in args.seeds:
        for cell in args.cells:
            task, sparsity = cell.rsplit(":", 1)
            for precision in args.precisions:
                row = run_cell(task, float(sparsity), precision, seed, args.threads)
                add_record(RESULTS, row, script, key, {
                    "protocol": f"MiniLM-L6 (all-MiniLM-L6-v2), the README main job's defaults, {EXAMPLES} training "
                                "examples, teacher trained in the run, train.precision as the record says",
                    "machine": machine()})
                print(f"[done] {task} {sparsity} {precision} seed {seed}: teacher {row['teacher']:.4f} "
                      f"pruned {row['pruned']:.4f}, {row['timing_s']['total']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
