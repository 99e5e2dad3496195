"""Issue 16's learning-rate check on the small end: the dense teacher at other `teacher.lr` values.

The learning curve's teachers train at the quick preset's `teacher.lr=1e-4` for the same number of steps
at every size (each epoch counts at least 1,000 examples), so with 100 or 300 examples they go round the
same pairs 13-40 times at that rate. On MRPC and RTE those bi-encoder teachers end below the untrained
model's own cosine score; this measures whether a lower rate is the remedy, before anything is changed.

A cell is a teacher-only run: the curve's baseline cell (MiniLM-L6, default head, the same task,
training examples and seed, fp32) with `--set teacher.lr=LR`, and pruning cut to a token (sparsity 0.1,
0.05 pruning and fine-tuning epochs); the teacher phase runs first and does not depend on those. Only
its teacher, untrained and constant scores are read. The `1e-4` column is the curve's own baseline
teacher of the same task, size and seed (the sources `bench/learning_curve.py --table` reads); a cell
run at `--lrs 0.0001` checks that a teacher-only run reproduces it.

With `--pruned` a cell is the curve's whole baseline cell with `--set teacher.lr=LR` and nothing else
changed (sparsity 0.9, the curve's pruning schedule): does the pruned model follow its teacher? Its
reference is the curve's baseline cell of the same task, size and seed (teacher and pruned model).

Resumable: a cell whose run folder has a finished report is read. Results: bench/results/teacher_lr.json.

    python bench/teacher_lr.py --tasks glue/mrpc glue/rte --examples 300 --seeds 1 --lrs 2e-5 --threads 1
    python bench/teacher_lr.py --pruned --tasks glue/mrpc glue/rte --examples 100 --seeds 2 3 --threads 1
    python bench/teacher_lr.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_curve as curve  # noqa: E402
from prune_cell import TABLE_PRECISION, run_prune  # noqa: E402
from results_file import add_record, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "teacher_lr.json"
WORK = ROOT / "bench" / "work" / "teacher_lr"
CURVE_LR = 1e-4  # the quick preset's teacher.lr, what every learning-curve teacher trained at
TOKEN_PRUNING = ["--sparsity", "0.1", "--set", "prune.epochs=0.05", "--set", "finetune.epochs=0.05"]


def cell_name(task: str, examples: int, lr: float, seed: int, kind: str = "teacher") -> str:
    """kind: "teacher" (a teacher-only run) or "pruned" (the curve's whole baseline cell at the rate)."""
    return f"{task.split('/')[-1]}_n{examples}_lr{lr:g}{'_pruned' if kind == 'pruned' else ''}_seed{seed}"


def run_cell(task: str, examples: int, lr: float, seed: int, threads: int | None,
             kind: str = "teacher") -> tuple[dict, float | None, str]:
    out = WORK / cell_name(task, examples, lr, seed, kind)
    rate = ["--set", f"teacher.lr={lr:g}"]
    if kind == "pruned":
        command = curve.base_command(task, examples, seed, Path(curve.display(out))) + rate
    else:
        command = ["auxprune", "prune", "--task", task, "--max-train-examples", str(examples), "--seed", str(seed),
                   "--output", curve.display(out), "--overwrite", *TOKEN_PRUNING, *rate, *TABLE_PRECISION]
    report, wall, _ = run_prune(out, command, threads, out.name)
    return report, wall, shlex.join(command)


def key(r: dict) -> tuple:
    return r["task"], r["examples"], r["seed"], r["lr"], r.get("kind", "teacher")


def curve_teachers() -> dict[tuple, dict]:
    """(task, examples, seed) -> the learning curve's baseline row (default head), teacher at CURVE_LR."""
    bars = json.loads(curve.RESULTS.read_text()).get("bars_at_1000", {}) if curve.RESULTS.is_file() else {}
    return {(r["task"], r["examples"], r["seed"]): r for r in curve.merged_rows(bars, history=False)
            if r["method"] == "baseline" and r["head"] == curve.HEAD}


def table(records: list[dict], reference: dict[tuple, dict]) -> str:
    """One row per (task, examples, seed) measured here: the bars, the curve's teacher, each rate's teacher."""
    records = [r for r in records if r.get("kind", "teacher") == "teacher"]
    rates = sorted({r["lr"] for r in records} - {CURVE_LR}, reverse=True)
    by_key = {key(r)[:4]: r for r in records}
    header = ["task", "train examples", "seed", "untrained (cosine)", "constant", f"teacher, lr {CURVE_LR:g} (curve)",
              *[f"teacher, lr {lr:g}" for lr in rates], *[f"lr {lr:g} minus curve" for lr in rates]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    x100 = lambda v: "" if v is None else f"{100 * v:.1f}"  # noqa: E731
    gains: dict[float, list[float]] = {lr: [] for lr in rates}
    for cell in sorted({key(r)[:3] for r in records}):
        task, examples, seed = cell
        any_run = next(r for r in records if key(r)[:3] == cell)
        ref = reference.get(cell, {})
        check = by_key.get((*cell, CURVE_LR))
        ref_text = x100(ref.get("teacher"))
        if check is not None:  # the teacher-only run at the curve's rate, beside the curve's own teacher
            ref_text += f" (rerun {x100(check['teacher'])})"
        row = [task, f"{examples:,}", str(seed), x100(any_run["untrained"]), x100(any_run["constant"]), ref_text]
        row += [x100(by_key[(*cell, lr)]["teacher"]) if (*cell, lr) in by_key else "" for lr in rates]
        for lr in rates:
            if (*cell, lr) in by_key and ref.get("teacher") is not None:
                gain = 100 * (by_key[(*cell, lr)]["teacher"] - ref["teacher"])
                gains[lr].append(gain)
                row.append(f"{gain:+.1f}")
            else:
                row.append("")
        lines.append("| " + " | ".join(row) + " |")
    for lr, values in gains.items():
        if values:
            lines.append(f"\nlr {lr:g} against the curve's teacher: mean {statistics.mean(values):+.1f} over "
                         f"{len(values)} cells, higher in {sum(v > 0 for v in values)}")
    return "\n".join(lines)


def pruned_table(records: list[dict], reference: dict[tuple, dict]) -> str:
    """One row per whole cell run at another rate: its teacher and pruned model beside the curve's baseline cell."""
    records = sorted((r for r in records if r.get("kind") == "pruned"), key=lambda r: (r["lr"], *key(r)[:3]))
    if not records:
        return ""
    x100 = lambda v: "" if v is None else f"{100 * v:.1f}"  # noqa: E731
    header = ["task", "train examples", "seed", "rate", "untrained (cosine)", f"teacher, lr {CURVE_LR:g} (curve)",
              "teacher at the rate", f"pruned 0.9, lr {CURVE_LR:g} (curve)", "pruned 0.9 at the rate",
              "teacher minus curve", "pruned minus curve"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    gains: dict[float, list[tuple[float, float]]] = {}
    for r in records:
        ref = reference.get(key(r)[:3], {})
        row = [r["task"], f"{r['examples']:,}", str(r["seed"]), f"{r['lr']:g}", x100(r["untrained"]),
               x100(ref.get("teacher")), x100(r["teacher"]), x100(ref.get("pruned")), x100(r["pruned"])]
        if ref.get("teacher") is not None and ref.get("pruned") is not None:
            pair = 100 * (r["teacher"] - ref["teacher"]), 100 * (r["pruned"] - ref["pruned"])
            gains.setdefault(r["lr"], []).append(pair)
            row += [f"{pair[0]:+.1f}", f"{pair[1]:+.1f}"]
        else:
            row += ["", ""]
        lines.append("| " + " | ".join(row) + " |")
    for lr, pairs in gains.items():
        teacher, pruned = [p[0] for p in pairs], [p[1] for p in pairs]
        lines.append(f"\nlr {lr:g}, whole cells against the curve's: teacher {statistics.mean(teacher):+.1f}, pruned "
                     f"model {statistics.mean(pruned):+.1f} on the mean of {len(pairs)} cells (pruned model higher in "
                     f"{sum(v > 0 for v in pruned)}, lower in {sum(v < 0 for v in pruned)})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["glue/mrpc", "glue/rte", "glue/stsb"])
    parser.add_argument("--examples", nargs="+", type=int, default=[100, 300])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--lrs", nargs="+", type=float, default=[2e-5])
    parser.add_argument("--pruned", action="store_true",
                        help="run the curve's whole baseline cell at each rate (teacher and pruned model), not the "
                             "teacher alone")
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the table from the results file, run nothing")
    args = parser.parse_args()
    if not args.table:
        command = shlex.join(["python", "bench/teacher_lr.py", *sys.argv[1:]])
        for examples in args.examples:
            for seed in args.seeds:
                for task in args.tasks:
                    for lr in args.lrs:
                        kind = "pruned" if args.pruned else "teacher"
                        report, wall, cell_command = run_cell(task, examples, lr, seed, args.threads, kind)
                        m = report["metrics"]
                        primary = m["primary"]
                        row = {"task": task, "examples": examples, "train_examples": report["data"]["train_examples"],
                               "seed": seed, "lr": lr, "kind": kind, "head": report["head"]["head"],
                               "metric_name": primary,
                               "teacher": m["teacher"][primary], "untrained": (m.get("untrained") or {}).get(primary),
                               "constant": m["constant_baseline"][primary],
                               "teacher_steps": report["schedule"]["phases"]["teacher"]["steps"],
                               "teacher_s": report["timing"].get("teacher"), "wall_s": wall, "threads": args.threads,
                               "command": cell_command}
                        if args.pruned:
                            row.update(pruned=m["pruned"][primary], sparsity=report["sparsity"],
                                       prune_steps=report["schedule"]["phases"]["prune"]["steps"])
                        add_record(RESULTS, row, command, key, {
                            "protocol": "MiniLM-L6, default head, fp32; kind teacher: teacher-only runs (pruning cut "
                                        "to a token: sparsity 0.1, 0.05 pruning and fine-tuning epochs); kind pruned: "
                                        "the learning curve's whole baseline cell (sparsity 0.9); teacher.lr as "
                                        "given; the reference is the learning curve's baseline cell (teacher at lr "
                                        f"{CURVE_LR:g})",
                            "machine": machine(), "note": "2 cores shared with other benchmark runs: compare metrics"})
                        pruned = f", pruned {row['pruned']:.4f}" if args.pruned else ""
                        print(f"[done] {task} n={examples} seed {seed} lr {lr:g}: teacher {row['teacher']:.4f}{pruned} "
                              f"(untrained {row['untrained']})", flush=True)
    records = json.loads(RESULTS.read_text())["records"] if RESULTS.is_file() else []
    reference = curve_teachers()
    print(table(records, reference))
    if whole := pruned_table(records, reference):
        print("\n" + whole)


if __name__ == "__main__":
    main()
