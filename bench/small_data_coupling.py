"""Issue 16 follow-up: does a stronger coupling make transfer pay most where data is scarcest?

The learning curve (bench/learning_curve.py) measured the --aux recipe's gain over the pruned baseline at
100, 300 and 1,000 target examples and found it largest at 300, not at 100 (STS-B +0.8 at 100, +2.1 at
300; MRPC 0.0 and +2.9). The recipe's coupling was fit at 1,000 examples. At 100 examples the schedule
still counts each epoch over 1,000 examples (train.min_epoch_examples), so the pruned model sees the
same 100 target inputs about 60 times; the auxiliary inputs are the only new ones. This script runs the
recipe at one size with one coupling setting changed (a `variant`), on the learning curve's protocol
otherwise (same command and seed; the teacher is the curve's transfer cell's own, via teacher.path, so
that a pair differs in pruning and fine-tuning only; without it, stage 1 via transfer.stage1_from) and
prints the paired gain against that curve's baseline and default-recipe cells of the same task, size
and seed.

Variants:
- aux_distill_3: the recipe with transfer.aux_distill_weight=3 (distil the teacher on auxiliary inputs three
  times as hard);
- aux_constant: the recipe with transfer.when=constant (the auxiliary label loss keeps its weight instead of
  decaying);
- teacher_only: what transfers is the teacher alone. The baseline's command (no auxiliary data in pruning
  or fine-tuning) pruning the recipe's teacher, which the intermediate auxiliary epoch lifted or lowered;
  needs that teacher's folder. Asks whether the auxiliary inputs during pruning are what costs RTE at
  1,000 and 2,490 examples, where the recipe's teacher is better than the baseline's and its pruned
  model worse;
- baseline_teacher: its mirror, what transfers is the auxiliary data in pruning alone. The recipe without its
  intermediate auxiliary epoch (transfer.teacher_aux_epochs=0: the teacher trained on the target only), pruning
  the curve's baseline cell's teacher when its folder is here. Asks whether the recipe without that epoch keeps
  transfer's gain where the training set is large.

Resumable like the other bench scripts: a finished run folder is read, an interrupted one resumes.
Results: bench/results/small_data_coupling.json (records with their command).

    python bench/small_data_coupling.py --tasks glue/stsb --examples 100 --seeds 1 2 3 --variants aux_distill_3 --threads 1
    python bench/small_data_coupling.py --table

At 1,000 examples the curve's cells are bench/bi_encoder.py's: a variant cell prunes its 0.6 transfer cell's
teacher when that folder is here, else trains its own from the same stage 1 (the record's command says which).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import bi_encoder  # noqa: E402
import learning_curve as curve  # noqa: E402
from prune_cell import TABLE_RECIPE, run_prune  # noqa: E402
from results_file import add_record, machine  # noqa: E402
from transfer_limited_data import aux_sets  # noqa: E402

ROOT = curve.ROOT
RESULTS = ROOT / "bench" / "results" / "small_data_coupling.json"
WORK = ROOT / "bench" / "work" / "small_data_coupling"


@dataclass(frozen=True)
class Variant:
    sets: tuple[str, ...] = ()  # --set flags on top of the command (a later --set wins)
    recipe: bool = True  # the recipe's command (auxiliary data in pruning), else the baseline's
    teacher: str = "transfer"  # whose teacher it prunes: the curve's cell of this method (same task, size, seed)
    needs_teacher: bool = False  # without that teacher the cell means nothing (else it trains its own)


VARIANTS = {
    "aux_distill_3": Variant(("--set", "transfer.aux_distill_weight=3")),
    "aux_constant": Variant(("--set", "transfer.when=constant")),
    "teacher_only": Variant(recipe=False, needs_teacher=True),
    "baseline_teacher": Variant(("--set", "transfer.teacher_aux_epochs=0"), teacher="baseline"),
}


def run_cell(task: str, examples: int, seed: int, variant: str, threads: int | None) -> tuple[dict, float | None, str]:
    name = f"{task.split('/')[-1]}_n{examples}_{variant}_seed{seed}"
    out = WORK / name
    spec = VARIANTS[variant]
    # the curve's recipe (its pinned weight included) and the variant's one change on top (a later --set wins), or
    # the baseline's command alone
    command = curve.base_command(task, examples, seed, out.relative_to(ROOT))
    if spec.recipe:
        command += [*aux_sets(task), *TABLE_RECIPE, *spec.sets]
    teacher = curve_teacher(task, examples, seed, spec.teacher)
    if teacher is None and spec.needs_teacher:
        raise SystemExit(f"{name}: the variant prunes the {spec.teacher} cell's teacher, and no folder of the curve's "
                         f"{spec.teacher} cell of {task}, {examples} examples, seed {seed} keeps one; run that cell first")
    if teacher is not None:  # that curve cell's own teacher: the pair differs in pruning only
        command += ["--set", f"teacher.path={curve.display(teacher)}"]
    elif spec.teacher == "transfer" and (source := curve.stage1_source(task, seed, out)) is not None:
        # stage 1 is the start of the recipe's teacher (its intermediate epoch); shared per task and seed
        command += ["--set", f"transfer.stage1_from={curve.display(source)}"]
    report, wall, _ = run_prune(out, command, threads, name)
    return report, wall, shlex.join(command)


def curve_teacher(task: str, examples: int, seed: int, method: str = "transfer") -> Path | None:
    """The teacher of the curve's cell of this method, task, size and seed, when its folder is here: at 1,000
    examples bench/bi_encoder.py's 0.6 cell (whose teacher its 0.9 cell pruned) or, where that 0.9 cell ran
    alone and trained its own, the 0.9 cell; else this curve's own cell."""
    if examples == curve.FROM_BI_BENCH:
        runs = [curve.bi_run(task, seed, sparsity, method) for sparsity in bi_encoder.SPARSITIES]  # shared one first
    else:
        runs = [curve.WORK / curve.cell_name(task, examples, method, seed)]
    return next((run / "teacher" for run in runs if (run / "teacher" / "model.safetensors").is_file()), None)


def key(r: dict) -> tuple:
    return r["task"], r["examples"], r["seed"], r["variant"]


def table() -> str:
    """Per task, size and variant: the pruned model's mean, and its paired gain over the curve's baseline and
    default recipe (same task, size and seed)."""
    if not RESULTS.is_file():
        return "(no cells yet)"
    records = json.loads(RESULTS.read_text())["records"]
    bars = json.loads(curve.RESULTS.read_text()).get("bars_at_1000", {}) if curve.RESULTS.is_file() else {}
    reference = {(r["task"], r["examples"], r["seed"], r["method"]): r["pruned"]
                 for r in curve.merged_rows(bars, history=False) if r["head"] == curve.HEAD}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["task"], r["examples"], r["variant"]), []).append(r)
    lines = ["| task | train examples | variant | seeds | teacher | pruned 0.9 | gain over baseline (paired) | "
             "gain over the default recipe (paired) |", "|---|---|---|---|---|---|---|---|"]

    def gain(rows: list[dict], method: str) -> str:
        pairs = [(r["pruned"], reference[(r["task"], r["examples"], r["seed"], method)]) for r in rows
                 if (r["task"], r["examples"], r["seed"], method) in reference]
        if not pairs:
            return ""
        each = ", ".join(f"{100 * (a - b):+.1f}" for a, b in pairs)
        return f"{100 * statistics.mean(a - b for a, b in pairs):+.1f} ({each})"

    for (task, examples, variant), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["seed"])
        teacher, pruned = (curve.percent(curve.mean_spread([r[field] for r in rows]))
                           for field in ("teacher", "pruned"))
        lines.append(f"| {task} ({rows[0]['metric_name']}) | {examples:,} | {variant} | "
                     f"{','.join(str(r['seed']) for r in rows)} | {teacher} | {pruned} | {gain(rows, 'baseline')} | "
                     f"{gain(rows, 'transfer')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["glue/stsb"])
    parser.add_argument("--examples", nargs="+", type=int, default=[100])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the table from the results file, run nothing")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    command = shlex.join(["python", "bench/small_data_coupling.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    for examples in args.examples:
        for seed in args.seeds:
            for task in args.tasks:
                for variant in args.variants:
                    report, wall, cell_command = run_cell(task, examples, seed, variant, args.threads)
                    r = curve.record(task, examples, seed, "transfer", report,
                                     wall if wall is not None else report["timing"]["total"], cell_command)
                    r.update(variant=variant, variant_sets=list(VARIANTS[variant].sets), threads=args.threads)
                    add_record(RESULTS, r, command, key, {
                        "protocol": "bench/learning_curve.py's transfer cell (MiniLM-L6, sparsity 0.9, default head, "
                                    "6 pruning epochs, fp32, the transfer benchmark's auxiliary data) with the "
                                    "variant's settings added (variant_sets), pruning the teacher of the curve's "
                                    "transfer cell of the same task, size and seed (teacher.path; else stage 1 "
                                    "shared per task and seed, transfer.stage1_from); variant teacher_only: the "
                                    "curve's baseline cell (no auxiliary data) pruning that same teacher; variant "
                                    "baseline_teacher: the transfer cell without the intermediate epoch "
                                    "(transfer.teacher_aux_epochs=0) pruning the curve's baseline cell's teacher "
                                    "(teacher.path; else training that target-only teacher again, no stage 1)",
                        "machine": machine()})
                    print(f"[done] {task} n={examples} seed {seed} {variant}: teacher {r['teacher']:.4f} "
                          f"pruned {r['pruned']:.4f} ({r['wall_s']:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
