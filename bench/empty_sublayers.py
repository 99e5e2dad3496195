"""Pruning with the cut model's view of an emptied sublayer, against CoFi's view: which one gives better models?

While pruning, a layer whose heads (or FFN units) all draw zero can either be absent from the forward, as it is
from the model the cut produces (`prune.skip_empty_sublayers=true`, the default since 2026-12-07), or still run
its LayerNorm over the residual plus the output projection's bias (`false`: CoFi's formulation and auxprune's
until then). With `false` the cut changes the function pruning fit wherever a sublayer emptied; `cut_check` in
the report measures by how much (cosine of the cut model's pooled embeddings with the gated student's).

Each pair of cells runs one task, seed and method twice, the same in all but this switch: the `skip` cell
trains the dense teacher, the `run` cell prunes that same teacher (`teacher.path`). Models:
- `minilm`: all-MiniLM-L6-v2 at sparsity 0.9 with today's defaults otherwise (1,000 training examples, the
  limited-data protocol), where pruning empties sublayers;
- `mpnet`: all-mpnet-base-v2 pruned to MiniLM-L6's size as bench/size_matched.py's cell, with 12 pruning epochs
  and the hidden family (bench/bi_recipe.py's `prune_x2_hidden`), the recipe whose STS-B model collapsed in bf16.
`--methods transfer` adds the --aux recipe (the transfer benchmark's auxiliary data). `--precision fp32` trains
the MPNet cells in fp32 instead of size_matched's bf16 (on a CPU without bf16 instructions, where bf16 autocast is
emulated and many times slower); such a pair has its own folders and records and says so in the table.

    python bench/empty_sublayers.py --models minilm --tasks glue/stsb glue/mrpc glue/rte --seeds 1 --threads 1
    python bench/empty_sublayers.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import size_matched  # noqa: E402
from bi_recipe import VARIANTS  # noqa: E402
from prune_cell import run_prune  # noqa: E402
from results_file import add_record, display, machine  # noqa: E402
from transfer_limited_data import aux_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "empty_sublayers.json"
WORK = ROOT / "bench" / "work" / "empty_sublayers"
MODELS = ("minilm", "mpnet")
TASKS = ("glue/stsb", "glue/mrpc", "glue/rte")
METHODS = ("baseline", "transfer")
RULES = ("skip", "run")  # skip: trains the teacher; run: prunes the skip cell's teacher
MINILM_SPARSITY = 0.9
EXAMPLES = 1000
MPNET_RECIPE = "prune_x2_hidden"


def precision_suffix(model: str, precision: str | None) -> str:
    """Nothing for a cell in its model's usual precision (size_matched's), else `_fp32` or `_bf16`."""
    return "" if precision in (None, size_matched.cell_precision(model)) else f"_{precision}"


def cell_name(model: str, task: str, method: str, seed: int, rule: str, precision: str | None = None) -> str:
    return f"{task.split('/')[-1]}_{model}{precision_suffix(model, precision)}_{method}_seed{seed}_{rule}"


def cell_command(model: str, task: str, method: str, seed: int, rule: str, precision: str | None = None) -> list[str]:
    out = display(WORK / cell_name(model, task, method, seed, rule, precision))
    if model == "mpnet":
        command = size_matched.cell_command(task, "mpnet", method, seed)
        command[command.index("--output") + 1] = out
        for assignment in VARIANTS[MPNET_RECIPE]:
            command += ["--set", assignment]
        if precision_suffix(model, precision):  # the later --set wins over size_matched's
            command += ["--set", f"train.precision={precision}"]
    else:
        command = ["auxprune", "prune", "--task", task, "--sparsity", str(MINILM_SPARSITY), "--max-train-examples",
                   str(EXAMPLES), "--seed", str(seed), "--output", out, "--overwrite",
                   *(aux_sets(task) if method == "transfer" else [])]
    # Said in both cells: size_matched's command pins CoFi's view for its own table (prune_cell.TABLE_SCHEDULE).
    command += ["--set", f"prune.skip_empty_sublayers={'true' if rule == 'skip' else 'false'}"]
    if rule == "run":
        teacher = display(WORK / cell_name(model, task, method, seed, "skip", precision) / "teacher")
        command += ["--set", f"teacher.path={teacher}"]
    return command


def record(model: str, task: str, method: str, seed: int, rule: str, report: dict, wall: float, command: str,
           precision: str | None = None) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    layers = report["structure"]["layers"]
    return {"model": model, "task": task, "method": method, "seed": seed, "rule": rule,
            "precision": precision or size_matched.cell_precision(model), "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "untrained": (m.get("untrained") or {}).get(primary), "measured_sparsity": report["sparsity"],
            "attention_removed": sum(not layer["attention_kept"] for layer in layers),
            "ffn_removed": sum(not layer["ffn_kept"] for layer in layers),
            "heads_kept": sum(layer["heads"] for layer in layers), "hidden_kept": report["structure"]["hidden_kept"],
            "cut_check": report.get("cut_check"), "embedding_spread": report.get("embedding_spread"), "head": report["head"]["head"], "warnings": report.get("warnings", []),
            "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    return model_label(r), r["task"], r["method"], r["seed"], r["rule"]


def model_label(r: dict) -> str:
    """The model, with its precision when not its usual one (records from before the option have none)."""
    precision = r.get("precision")
    return r["model"] + (f" ({precision})" if precision_suffix(r["model"], precision) else "")


def records() -> list[dict]:
    return json.loads(RESULTS.read_text()).get("records", []) if RESULTS.is_file() else []


def run(models, tasks, methods, seeds, threads, precision: str | None = None) -> None:
    for model in models:
        for task in tasks:
            for method in methods:
                for seed in seeds:
                    for rule in RULES:
                        cell_precision = precision if model == "mpnet" else None  # MiniLM cells are fp32 anyway
                        out = WORK / cell_name(model, task, method, seed, rule, cell_precision)
                        command = cell_command(model, task, method, seed, rule, cell_precision)
                        report, wall, ran = run_prune(out, command, threads, out.name, resume_as=display(out))
                        row = record(model, task, method, seed, rule, report,
                                     wall if ran else report["timing"]["total"], shlex.join(command), cell_precision)
                        add_record(RESULTS, {**row, "threads": threads}, row["command"], key, {
                            "protocol": "each pair: the same command but prune.skip_empty_sublayers (skip: true, trains "
                                        "the teacher; run: false, prunes that teacher via teacher.path); minilm: "
                                        f"sparsity {MINILM_SPARSITY}, {EXAMPLES:,} training examples, today's defaults; "
                                        "mpnet: bench/size_matched.py's cell with bench/bi_recipe.py's "
                                        f"{MPNET_RECIPE} settings",
                            "machine": machine(),
                            "note": "wall_s was measured on 2 cores shared with other work: compare metrics, not times"})
                        print(f"[done] {out.name}: pruned {row['pruned']:.4f}, attention sublayers removed "
                              f"{row['attention_removed']}, cut check {row['cut_check']}", flush=True)


def table(rows: list[dict]) -> str:
    """One line per pair: the two rules' pruned metric, their difference, what the cut removed and how far the cut
    moved the embeddings; then the mean paired difference per model."""
    lines = ["| model | task | method | seed | teacher | untrained | pruned: skip / run | skip - run "
             "| sublayers removed (attention + FFN): skip / run | cut check, mean embedding cosine: skip / run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {key(r): r for r in rows}
    pairs = sorted({key(r)[:4] for r in rows}, key=lambda k: (k[0], TASKS.index(k[1]), k[2], k[3]))
    differences: dict[str, list[float]] = {}
    for pair in pairs:
        skip, ran = by_key.get(pair + ("skip",)), by_key.get(pair + ("run",))
        first = skip or ran

        def cell(r: dict | None, field) -> str:
            return field(r) if r is not None else "-"

        difference = ""
        if skip is not None and ran is not None:
            differences.setdefault(pair[0], []).append(skip["pruned"] - ran["pruned"])
            difference = f"{100 * (skip['pruned'] - ran['pruned']):+.1f}"
        pruned = lambda r: f"{100 * r['pruned']:.1f}"  # noqa: E731
        cosine = lambda r: f"{r['cut_check']['embedding_cosine_mean']:.3f}" if r.get("cut_check") else "?"  # noqa: E731
        removed = lambda r: f"{r['attention_removed']} + {r['ffn_removed']}"  # noqa: E731
        untrained = f"{100 * first['untrained']:.1f}" if first.get("untrained") is not None else "-"
        lines.append(f"| {pair[0]} | {pair[1]} ({first['metric_name']}) | {pair[2]} | {pair[3]} "
                     f"| {100 * first['teacher']:.1f} | {untrained} "
                     f"| {cell(skip, pruned)} / {cell(ran, pruned)} | {difference} "
                     f"| {cell(skip, removed)} / {cell(ran, removed)} | {cell(skip, cosine)} / {cell(ran, cosine)} |")
    notes = [f"- {model}: skip - run {100 * sum(d) / len(d):+.1f} on average over {len(d)} pair(s), "
             f"{sum(x > 0 for x in d)} better, {sum(x < 0 for x in d)} worse" for model, d in differences.items()]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["minilm"])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["baseline"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default=None,
                        help="the MPNet cells' training precision (default: size_matched's, bf16)")
    parser.add_argument("--table", action="store_true", help="print the table from the results file")
    args = parser.parse_args(argv)
    if args.table:
        print(table(records()))
        return
    run(args.models, args.tasks, args.methods, args.seeds, args.threads, args.precision)
    print(table(records()))


if __name__ == "__main__":
    main()
