"""Issue 19 benchmark: bi-encoder heads against today's cross-encoder, and against doing nothing.

MiniLM-L6 (all-MiniLM-L6-v2, a sentence-embedding model), STS-B and MRPC with 1,000 training
examples (the limited-data protocol), sparsity 0.6 and 0.9, seeds 1-3, `model.head=bi`:
- `baseline`: the dense bi-encoder fine-tuned on the target (the run's teacher), then pruned;
- `concat` (MRPC): the baseline with the [u, v, |u - v|] classifier instead of the cosine one;
- `transfer`: the `--aux` recipe (SICK relatedness for STS-B, Twitter URL for MRPC, as in the
  transfer benchmark): the teacher trains on the auxiliary pairs first, pruning adds the auxiliary
  loss and distils the teacher's embeddings and cosines on auxiliary inputs.
The 0.6 cell of a (task, method, seed) trains the teacher; the 0.9 cell reuses it (`teacher.path`),
as the transfer benchmark does, so both sparsities are pruned from the same dense model.
A transfer cell that trains its teacher starts from the same seed's stage 1 (the auxiliary tasks alone, no
target data) where bench/learning_curve.py kept one (`transfer.stage1_from`), as the curve's cells do.

Beside them in the table: the untrained model used as sentence-transformers intends (each run's
`untrained` bar) and today's cross-encoder numbers at the same protocol
(bench/results/transfer_limited_data.json, methods baseline and transfer).

Every cell is its own run folder under bench/work/bi_encoder/. Resumable: a cell in the results file
is skipped, a finished run folder is read, an interrupted one resumes from its newest checkpoint.

    python bench/bi_encoder.py --tasks glue/stsb --seeds 1 --threads 1
    python bench/bi_encoder.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import learning_curve as curve  # noqa: E402
from prune_cell import TABLE_PRECISION, TABLE_RECIPE, TABLE_SCHEDULE, run_prune  # noqa: E402
from results_file import add_record, machine  # noqa: E402
from transfer_limited_data import AUX, aux_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bi_encoder.json"
CROSS_RESULTS = ROOT / "bench" / "results" / "transfer_limited_data.json"
WORK = ROOT / "bench" / "work" / "bi_encoder"
TASKS = ("glue/stsb", "glue/mrpc")
EXTRA_TASKS = ("glue/rte",)  # not in the table: the check that model.head=auto's choice holds off it
SPARSITIES = (0.6, 0.9)
METHODS = ("baseline", "transfer", "concat")
# `concat`: the baseline with SBERT's [u, v, |u - v|] classifier instead of the cosine one (classes only):
# the measurement behind model.pair_classifier's default.
METHOD_SETS = {"baseline": [], "transfer": [], "concat": ["--set", "model.pair_classifier=concat"]}
EXAMPLES = 1000
HEAD = ["--set", "model.head=bi"]


def cell_name(task: str, sparsity: float, method: str, seed: int) -> str:
    return f"{task.split('/')[-1]}_bi_s{sparsity}_{method}_seed{seed}"


def run_cell(task: str, sparsity: float, method: str, seed: int, threads: int | None) -> tuple[dict, float | None, str]:
    """The cell's report, its wall time (None when it finished in an earlier invocation), its command."""
    out = WORK / cell_name(task, sparsity, method, seed)
    command = ["auxprune", "prune", "--task", task, "--sparsity", str(sparsity), "--max-train-examples", str(EXAMPLES),
               "--seed", str(seed), "--output", str(out.relative_to(ROOT)), "--overwrite", *HEAD]
    if method == "transfer":
        command += aux_sets(task) + TABLE_RECIPE
    command += METHOD_SETS[method] + TABLE_SCHEDULE + TABLE_PRECISION
    shared = WORK / cell_name(task, SPARSITIES[0], method, seed) / "teacher"
    if sparsity != SPARSITIES[0] and (shared / "model.safetensors").is_file():
        command += ["--set", f"teacher.path={shared.relative_to(ROOT)}"]  # the same dense model, pruned further
    elif method == "transfer" and (source := curve.stage1_source(task, seed, out)) is not None:
        # the same seed's stage 1 (auxiliary tasks only, no target data) from another run: ~11 min saved on RTE
        command += ["--set", f"transfer.stage1_from={curve.display(source)}"]
    report, wall, _ = run_prune(out, command, threads, out.name)
    return report, wall, shlex.join(command)


def record(task: str, sparsity: float, method: str, seed: int, report: dict, wall: float, command: str) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    return {"task": task, "sparsity": sparsity, "method": method, "seed": seed, "head": report["head"],
            "aux": AUX[task] if method == "transfer" else [], "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary], "untrained": (m.get("untrained") or {}).get(primary),
            "teacher_metrics": m["teacher"], "pruned_metrics": m["pruned"], "measured_sparsity": report["sparsity"],
            "teacher_from": "teacher.path" if report["config"]["teacher"]["path"] else "trained in this run",
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    return r["task"], r["sparsity"], r["method"], r["seed"]


def write(row: dict, command: str) -> None:
    """Add one record to the results file (runners may work side by side)."""
    add_record(RESULTS, row, command, key, {
        "protocol": "MiniLM-L6 (all-MiniLM-L6-v2), quick preset with 6 pruning epochs (bench/prune_cell.py "
                    "TABLE_SCHEDULE), model.head=bi, 1,000 target training examples "
                    "(stratified, seed), full dev set; transfer: the --aux recipe with the transfer benchmark's "
                    "auxiliary data; the 0.9 cell prunes the 0.6 cell's teacher (teacher.path)",
        "machine": machine(),
        "note": "wall_s was measured on 2 cores shared with other work: compare metrics, not times",
    })


def recorded() -> set[tuple]:
    return {key(r) for r in json.loads(RESULTS.read_text()).get("records", [])} if RESULTS.is_file() else set()


def cross_rows() -> list[dict]:
    """Today's cross-encoder at the same protocol, from the transfer benchmark (seeds 1-3)."""
    if not CROSS_RESULTS.is_file():
        return []
    return [{"task": r["target"], "sparsity": r["sparsity"], "method": r["method"], "seed": r["seed"],
             "teacher": r["teacher_metric"], "pruned": r["metric"], "metric_name": r["metric_name"]}
            for r in json.loads(CROSS_RESULTS.read_text())["records"]
            if r["target"] in TASKS + EXTRA_TASKS and r["method"] in METHODS and r["seed"] in (1, 2, 3) and r.get("metric") is not None]


def mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    text = f"{100 * statistics.mean(values):.1f}"
    return text + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else "") + f" ({len(values)})"


def table(records: list[dict], cross: list[dict]) -> str:
    """One row per task and sparsity: the bars, the cross-encoder, the bi-encoder (mean ± sd (seeds))."""
    lines = ["| task | sparsity | untrained bi-encoder | cross teacher | cross pruned | cross pruned + transfer "
             "| bi teacher | bi pruned | bi teacher + transfer | bi pruned + transfer |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for task in [t for t in TASKS + EXTRA_TASKS if any(r["task"] == t for r in records)]:
        for sparsity in SPARSITIES:
            def pick(rows, method, field):
                return [r[field] for r in rows if (r["task"], r["sparsity"], r["method"]) == (task, sparsity, method)
                        and r.get(field) is not None]
            by_seed = {r["seed"]: r["untrained"] for r in records if (r["task"], r["sparsity"]) == (task, sparsity)
                       and r.get("untrained") is not None}  # the same bar for every method of a seed
            untrained = [by_seed[seed] for seed in sorted(by_seed)]
            metric = next((r["metric_name"] for r in records + cross if r["task"] == task), "")
            lines.append(f"| {task} ({metric}) | {sparsity} | {mean_sd(untrained)} | {mean_sd(pick(cross, 'baseline', 'teacher'))} "
                         f"| {mean_sd(pick(cross, 'baseline', 'pruned'))} | {mean_sd(pick(cross, 'transfer', 'pruned'))} "
                         f"| {mean_sd(pick(records, 'baseline', 'teacher'))} | {mean_sd(pick(records, 'baseline', 'pruned'))} "
                         f"| {mean_sd(pick(records, 'transfer', 'teacher'))} | {mean_sd(pick(records, 'transfer', 'pruned'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS + EXTRA_TASKS)
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=["baseline", "transfer"], choices=METHODS)
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the README table, run nothing")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text())["records"] if RESULTS.is_file() else [], cross_rows()))
        return
    command = shlex.join(["python", "bench/bi_encoder.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for method in args.methods:
            for task in args.tasks:
                for sparsity in sorted(args.sparsities):  # 0.6 first: it trains the teacher 0.9 reuses
                    if (task, sparsity, method, seed) in recorded():
                        print(f"[skip] {cell_name(task, sparsity, method, seed)}: in {RESULTS.name}", flush=True)
                        continue
                    report, wall, cell_command = run_cell(task, sparsity, method, seed, args.threads)
                    r = record(task, sparsity, method, seed, report, wall if wall is not None else report["timing"]["total"],
                               cell_command)
                    r["threads"] = args.threads
                    write(r, command)
                    print(f"[done] {cell_name(task, sparsity, method, seed)}: teacher {r['teacher']:.4f} pruned "
                          f"{r['pruned']:.4f} untrained {r['untrained']} ({r['wall_s']:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
