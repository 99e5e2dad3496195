"""Issue 16 benchmark: the learning curve, metric against the number of target training examples.

MiniLM-L6, sparsity 0.9, default settings (`quick` preset, whose schedule now counts each epoch
over at least 1,000 examples), RTE, MRPC and STS-B with 100, 300, 1,000 and 4,000 training examples
(the whole training set where it is smaller). Per cell: the dense teacher, the pruned baseline
and the pruned `--aux` recipe (the auxiliary pairs of the transfer benchmark), beside the two
no-training bars: the constant predictor and the untrained model's cosine score.

The 1,000-example points are the transfer benchmark's (bench/results/transfer_limited_data.json,
methods `baseline` and `transfer` at 0.9, seeds 1-3): at 1,000 examples the schedule rule changes
nothing, so they are not re-run. Their untrained bar is computed here (seconds, no training).

Every cell is its own run folder under bench/work/learning_curve/. Resumable: a cell already in the
results file is skipped, a finished run folder is read, an interrupted one resumes from its newest
checkpoint. Results: bench/results/learning_curve.json (records with their command), the plot
bench/results/learning_curve.png and the README table (`--table`).

    python bench/learning_curve.py --tasks glue/stsb --examples 300 100 --seeds 1 --threads 1
    python bench/learning_curve.py --table            # markdown table + plot from the results file
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


from auxprune.output import write_json
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from results_file import add_record, machine  # noqa: E402
from transfer_limited_data import AUX, aux_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# These runs measured the cross-encoder head; pinned since model.head=auto picks the bi-encoder for
# sentence-embedding models on pair tasks (bench/bi_encoder.py), so that rerunning a cell reproduces it.
CROSS = ["--set", "model.head=cross"]
RESULTS = ROOT / "bench" / "results" / "learning_curve.json"
PLOT = ROOT / "bench" / "results" / "learning_curve.png"
TRANSFER_RESULTS = ROOT / "bench" / "results" / "transfer_limited_data.json"
WORK = ROOT / "bench" / "work" / "learning_curve"
SPARSITY = 0.9
SIZES = [100, 300, 1000, 4000]
FROM_TRANSFER_BENCH = 1000  # examples whose cells come from the transfer benchmark
METHODS = ("baseline", "transfer")


def run_cell(task: str, examples: int, seed: int, method: str, threads: int | None) -> tuple[dict, float | None, str]:
    """The cell's report, its wall time (None when it finished in an earlier invocation), its command."""
    name = f"{task.split('/')[-1]}_n{examples}_{method}_seed{seed}"
    out = WORK / name
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    command = ["auxprune", "prune", "--task", task, "--sparsity", str(SPARSITY), "--max-train-examples", str(examples),
               "--seed", str(seed), "--output", str(out.relative_to(ROOT)), "--overwrite", *CROSS]
    if method == "transfer":
        command += aux_sets(task)
    if report.get("status") == "ok":
        print(f"[skip] {name}: finished earlier", flush=True)
        return report, None, shlex.join(command)
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        argv = ["prune", "--resume", str(out)]  # interrupted earlier: continue with its saved config
    else:
        argv = command[1:]
    if threads:
        argv = [*argv, "--set", f"train.threads={threads}"] if "--resume" not in argv else argv
    print(f"[run] {name}: auxprune {shlex.join(argv)}", flush=True)
    env = {**os.environ, "AUXPRUNE_DATA_DIR": os.environ.get("AUXPRUNE_DATA_DIR", str(ROOT.parent / "shared" / "data"))}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    started = time.time()
    subprocess.run([sys.executable, "-m", "auxprune.cli", *argv], check=True, env=env, cwd=ROOT)
    wall = time.time() - started
    report = json.loads(report_path.read_text())
    if "--resume" in argv:
        wall = report["timing"]["total"]
    return report, round(wall, 1), shlex.join(command)


def record(task: str, examples: int, seed: int, method: str, report: dict, wall: float, command: str) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    return {"task": task, "examples": examples, "train_examples": report["data"]["train_examples"], "seed": seed,
            "method": method, "aux": AUX[task] if method == "transfer" else [], "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "constant": m["constant_baseline"][primary],
            "untrained": (m.get("untrained") or {}).get(primary),
            "measured_sparsity": report["sparsity"], "schedule": report.get("schedule"),
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    return r["task"], r["examples"], r["seed"], r["method"]


def write(row: dict, command: str) -> None:
    """Add one record to the results file (runners may work side by side)."""
    add_record(RESULTS, row, command, key, {
        "protocol": f"MiniLM-L6 (all-MiniLM-L6-v2), quick preset (each epoch over at least "
                    f"train.min_epoch_examples=1000 examples), sparsity {SPARSITY}, target training set limited "
                    "to `examples` (stratified, seed; the whole set where smaller), full dev set; transfer: the "
                    "--aux recipe with the transfer benchmark's auxiliary data (up to 20k examples per target)",
        "machine": machine(),
        "note": "wall_s was measured on 2 cores shared with other work (development, other runners): compare "
                    "metrics, not times",
    }, keep=("bars_at_1000",))


def recorded() -> set[tuple]:
    return {key(r) for r in json.loads(RESULTS.read_text()).get("records", [])} if RESULTS.is_file() else set()


def bars_for(task: str, examples: int, seed: int) -> dict:
    """The constant predictor's and the untrained model's scores (primary metric) for one cell's data,
    as a run computes them (no training)."""
    from auxprune.config import build_config
    from auxprune.pipeline import load_data, untrained_score
    from accelerate import Accelerator

    config = build_config(overrides=[{"data": {"task": task, "max_train_examples": examples,
                                               "data_dir": str(ROOT.parent / "shared" / "data")}, "seed": seed}])
    data, constant = load_data(config)
    untrained = untrained_score(config, data, None, Accelerator())
    primary = data.spec.primary_metric
    return {"constant": constant[primary], "untrained": untrained["metrics"][primary] if untrained else None}


def transfer_bench_rows(bars: dict[str, dict]) -> list[dict]:
    """The 1,000-example cells from the transfer benchmark, as learning-curve rows. Their untrained
    bars are computed once per task and seed into `bars` ("task seed" -> {constant, untrained}), kept in
    the results file."""
    if not TRANSFER_RESULTS.is_file():
        return []
    rows = []
    for r in json.loads(TRANSFER_RESULTS.read_text())["records"]:
        if r["sparsity"] != SPARSITY or r["method"] not in METHODS or r["seed"] not in (1, 2, 3):
            continue
        cell = f"{r['target']} {r['seed']}"
        if cell not in bars:
            bars[cell] = bars_for(r["target"], FROM_TRANSFER_BENCH, r["seed"])
        rows.append({"task": r["target"], "examples": FROM_TRANSFER_BENCH, "train_examples": FROM_TRANSFER_BENCH,
                     "seed": r["seed"], "method": r["method"], "metric_name": r["metric_name"],
                     "teacher": r["teacher_metric"], "pruned": r["metric"], **bars[cell],
                     "measured_sparsity": r.get("measured_sparsity"), "source": "bench/results/transfer_limited_data.json"})
    return rows


def summary(records: list[dict]) -> dict:
    """Mean and spread over seeds per (task, examples, method) of teacher and pruned metrics."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["task"], r["examples"], r["method"]), []).append(r)
    out = {}
    for cell, rows in sorted(groups.items()):
        def stat(field):
            values = [r[field] for r in rows if r.get(field) is not None]
            return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None) if values else (None, None)
        out[cell] = {"seeds": sorted(r["seed"] for r in rows), "teacher": stat("teacher"), "pruned": stat("pruned"),
                     "untrained": stat("untrained"), "constant": stat("constant"), "metric": rows[0]["metric_name"],
                     "train_examples": rows[0]["train_examples"]}
    return out


def table(records: list[dict]) -> str:
    s = summary(records)
    fmt = lambda v: "" if v[0] is None else (f"{100 * v[0]:.1f}" + (f" ± {100 * v[1]:.1f}" if v[1] is not None else ""))
    bar = lambda v: "" if v[0] is None else f"{100 * v[0]:.1f}"  # the same data for every seed: no spread to show
    lines = ["| task | train examples | seeds | untrained (cosine) | constant | teacher | pruned 0.9 | teacher + transfer "
             "| pruned 0.9 + transfer | transfer gain | baseline retained |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task in sorted({c[0] for c in s}):
        for n in sorted({c[1] for c in s if c[0] == task}):
            base, aux = s.get((task, n, "baseline")), s.get((task, n, "transfer"))
            first = base or aux
            paired = [b for b in records if b["task"] == task and b["examples"] == n and b["method"] == "baseline"]
            gains = [a["pruned"] - b["pruned"] for b in paired for a in records
                     if (a["task"], a["examples"], a["method"], a["seed"]) == (task, n, "transfer", b["seed"])]
            gain = f"{100 * statistics.mean(gains):+.1f} ({len(gains)} seed{'s' if len(gains) > 1 else ''})" if gains else ""
            retained = f"{100 * base['pruned'][0] / base['teacher'][0]:.0f}%" if base else ""
            lines.append(f"| {task} ({first['metric']}) | {first['train_examples']:,} | {','.join(map(str, first['seeds']))} | "
                         f"{bar(first['untrained'])} | {bar(first['constant'])} | {fmt(base['teacher']) if base else ''} | "
                         f"{fmt(base['pruned']) if base else ''} | {fmt(aux['teacher']) if aux else ''} | "
                         f"{fmt(aux['pruned']) if aux else ''} | {gain} | {retained} |")
    return "\n".join(lines)


def plot(records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(records)
    tasks = sorted({c[0] for c in s})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sizes = sorted({c[1] for c in s if c[0] == task})
        def line(method, field, **style):
            points = [(s[(task, n, method)]["train_examples"], s[(task, n, method)][field]) for n in sizes
                      if (task, n, method) in s and s[(task, n, method)][field][0] is not None]
            if points:
                ax.errorbar([p[0] for p in points], [p[1][0] for p in points], yerr=[p[1][1] or 0 for p in points],
                            capsize=3, marker="o", **style)
        line("baseline", "teacher", label="dense teacher", color="0.5", linestyle="--")
        line("transfer", "teacher", label="dense teacher + transfer", color="tab:green", linestyle="--")
        line("baseline", "pruned", label="pruned 0.9", color="tab:blue")
        line("transfer", "pruned", label="pruned 0.9 + transfer", color="tab:red")
        line("baseline", "untrained", label="untrained (cosine)", color="k", linestyle=":")
        line("baseline", "constant", label="constant predictor", color="0.7", linestyle=":")
        metric = next(v["metric"] for c, v in s.items() if c[0] == task)
        ax.set(xscale="log", xlabel="training examples", ylabel=metric, title=f"{task} -> {', '.join(AUX[task])}"[:70])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("MiniLM-L6 pruned to 0.9: learning curve (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(AUX))
    parser.add_argument("--examples", nargs="+", type=int, default=[n for n in SIZES if n != FROM_TRANSFER_BENCH])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the README table and draw the plot, run nothing")
    args = parser.parse_args()
    if args.table:
        results = json.loads(RESULTS.read_text())
        bars = results.setdefault("bars_at_1000", {})
        known = dict(bars)
        records = results["records"] + transfer_bench_rows(bars)
        if bars != known:
            write_json(RESULTS, results)
        print(table(records))
        plot(records)
        return
    command = shlex.join(["python", "bench/learning_curve.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    for examples in args.examples:
        for seed in args.seeds:
            for task in args.tasks:
                for method in args.methods:
                    if (task, examples, seed, method) in recorded():
                        print(f"[skip] {task} n={examples} seed {seed} {method}: in {RESULTS.name}", flush=True)
                        continue
                    report, wall, cell_command = run_cell(task, examples, seed, method, args.threads)
                    r = record(task, examples, seed, method, report, wall if wall is not None else report["timing"]["total"],
                               cell_command)
                    r["threads"] = args.threads
                    write(r, command)
                    print(f"[done] {task} n={examples} seed {seed} {method}: teacher {r['teacher']:.4f} pruned "
                          f"{r['pruned']:.4f} ({r['wall_s']:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
