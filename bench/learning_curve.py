"""Issue 16 benchmark: the learning curve, metric against the number of target training examples.

What is measured: the tool as users now get it. MiniLM-L6 (all-MiniLM-L6-v2), sparsity 0.9, default
settings (`quick` preset, whose schedule counts each epoch over at least 1,000 examples; no head pin,
so `model.head=auto` picks the bi-encoder for this sentence-embedding model on RTE, MRPC and STS-B),
with 100, 300, 1,000 and 4,000 training examples (the whole training set where it is smaller; seeds
1-3 at 100 and 300, seed 1 at 4,000, as the issue asks). Per cell: the dense teacher, the pruned
baseline and the pruned `--aux` recipe (the auxiliary pairs of the transfer benchmark), beside the
two no-training bars: the constant predictor and the untrained model's cosine score. Every record
stores the head that ran (`head`, from the run's report).

Sources, read rather than re-run (each row of the curve names its file in `source`):
- bench/results/learning_curve.json: the cells run here (`auxprune prune --task T --sparsity 0.9
  --max-train-examples N --seed S ...`, plus the --aux recipe for `transfer`);
- bench/results/small_data_default.json: bench/small_data_default.py runs this script's baseline
  command without a head pin, so its records are the baseline cells at their size and seed;
- bench/results/bi_encoder.json: the 1,000-example cells (sparsity 0.9, baseline and transfer, seeds
  as they finish there; `--set model.head=bi`, which is what auto picks; the 0.9 cell prunes the 0.6
  cell's teacher of the same seed). They are bench/bi_encoder.py's: this script never runs a
  1,000-example cell, it prints the bi_encoder.py command that would fill it. Those records lack the
  constant predictor: it comes from `bars_at_1000` in the results file (computed once per task and
  seed by bars_for, no training).
A cell counts as done when any of the three has it with the default head; the cell loop skips it.

Heads are never mixed. Choice made here: the curve (the first table and the plot) holds only the
default head's cells (`HEAD`, the bi-encoder). The earlier cross-encoder cells (RTE and STS-B at 300,
seed 1, measured with the cross-encoder head; marked `"head": "cross"` in the results file) and the
transfer benchmark's cross-encoder cells at 1,000 (bench/results/transfer_limited_data.json) are
left out of the curve and the plot and printed by `--table` as a separate table labelled as history.
Means group by head as well, so no mean ever spans two heads.

Stage 1 of the `--aux` recipe (the teacher's training on the auxiliary pairs: 23-70 minutes of a
transfer cell on MRPC's Twitter URL, one core) never sees the target's data, so the transfer cells of one task
and seed share one: the first that runs trains it, the others start from it
(`--set transfer.stage1_from=...`, which checks that it was trained with the same auxiliary data,
seed and settings). bench/bi_encoder.py's 0.6 transfer cell of the task and seed is the first place
looked. The curve's sizes are then paired on stage 1 as they are on the seed.

Every cell run here is its own run folder under bench/work/learning_curve/ (`<task>_default_n...`).
Resumable: a cell already in a source is skipped, a finished run folder is read, an interrupted one
resumes from its newest checkpoint. Results: bench/results/learning_curve.json (records with their
command), the plot bench/results/learning_curve.png and the README tables (`--table`).

    python bench/learning_curve.py --tasks glue/stsb glue/mrpc glue/rte --examples 100 300 4000 --seeds 1 2 3 --threads 1
    python bench/learning_curve.py --table    # markdown tables + plot from the result files (no training)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import statistics
import sys
from pathlib import Path

import yaml

from auxprune.output import write_json
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from prune_cell import TABLE_PRECISION, TABLE_RECIPE, TABLE_SCHEDULE, run_prune  # noqa: E402
from results_file import add_record, display, machine  # noqa: E402
from transfer_limited_data import AUX, aux_sets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEAD = "bi"  # what model.head=auto picks for all-MiniLM-L6-v2 on RTE, MRPC and STS-B: the head of the curve
RESULTS = ROOT / "bench" / "results" / "learning_curve.json"
PLOT = ROOT / "bench" / "results" / "learning_curve.png"
TRANSFER_RESULTS = ROOT / "bench" / "results" / "transfer_limited_data.json"  # cross-encoder, 1,000 examples (history)
SMALL_DATA_RESULTS = ROOT / "bench" / "results" / "small_data_default.json"  # default head, baseline, 100/300
BI_RESULTS = ROOT / "bench" / "results" / "bi_encoder.json"  # bi-encoder, 1,000 examples, baseline and transfer
WORK = ROOT / "bench" / "work" / "learning_curve"
SPARSITY = 0.9
SIZES = [100, 300, 1000, 4000]
BI_WORK = ROOT / "bench" / "work" / "bi_encoder"  # bench/bi_encoder.py's run folders (a stage 1 to start from)
FROM_BI_BENCH = 1000  # examples whose cells are bench/bi_encoder.py's (not run here)
FROM_TRANSFER_BENCH = FROM_BI_BENCH  # the cross-encoder history's 1,000-example cells (transfer benchmark)
SEEDS_AT = {4000: (1,)}  # the issue: seeds 1-3 at 100 and 300, seed 1 at 4,000
METHODS = ("baseline", "transfer")


def cell_name(task: str, examples: int, method: str, seed: int) -> str:
    # "default": the head model.head=auto picks; the cross-encoder cells ran in folders without it
    return f"{task.split('/')[-1]}_default_n{examples}_{method}_seed{seed}"


def base_command(task: str, examples: int, seed: int, output: Path) -> list[str]:
    """A cell's `auxprune prune` command before its method's flags: the curve's protocol, no head pin."""
    return ["auxprune", "prune", "--task", task, "--sparsity", str(SPARSITY), "--max-train-examples", str(examples),
            "--seed", str(seed), "--output", str(output), "--overwrite", *TABLE_SCHEDULE, *TABLE_PRECISION]


def run_cell(task: str, examples: int, seed: int, method: str, threads: int | None) -> tuple[dict, float | None, str]:
    """The cell's report, its wall time (None when it finished in an earlier invocation), its command."""
    name = cell_name(task, examples, method, seed)
    out = WORK / name
    command = base_command(task, examples, seed, out.relative_to(ROOT))
    if method == "transfer":
        command += aux_sets(task) + TABLE_RECIPE
        source = stage1_source(task, seed, out)
        if source is not None:
            command += ["--set", f"transfer.stage1_from={display(source)}"]
    report, wall, _ = run_prune(out, command, threads, name)
    return report, wall, shlex.join(command)


def bi_run(task: str, seed: int, sparsity: float = 0.6, method: str = "transfer") -> Path:
    """bench/bi_encoder.py's run folder of this task and seed (by default the 0.6 transfer one, whose teacher the
    curve's 1,000-example recipe cell prunes to 0.9)."""
    import bi_encoder  # here, not at the top: bi_encoder imports this module
    return BI_WORK / bi_encoder.cell_name(task, sparsity, method, seed)


def stage1_source(task: str, seed: int, out: Path) -> Path | None:
    """A run of this task and seed with the --aux recipe whose stage 1 (kept as `stage1/`, or its record in a
    run stopped after it) this cell can start from: bench/bi_encoder.py's 0.6 transfer cell, else another
    size's cell here. A cell already started keeps what it started with (its config.yaml), so that resuming
    it gives the same run."""
    if (out / "config.yaml").is_file():
        given = (yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8")).get("transfer") or {}).get("stage1_from")
        return ROOT / given if given else None
    short = task.split("/")[-1]
    for run in [bi_run(task, seed),
                *sorted(WORK.glob(f"{short}_default_n*_transfer_seed{seed}"))]:
        kept = [run / "stage1", run / "checkpoints" / "phases" / "stage1"]  # finished, or stopped after stage 1
        if run != out and any((folder / "meta.json").is_file() for folder in kept):
            return run
    return None


def head_of(value) -> str:
    """The head a record ran: reports keep a dict (`report["head"]`), records its `head` string."""
    return value.get("head", "cross") if isinstance(value, dict) else value


def record(task: str, examples: int, seed: int, method: str, report: dict, wall: float, command: str) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    return {"task": task, "examples": examples, "train_examples": report["data"]["train_examples"], "seed": seed,
            "method": method, "head": head_of(report.get("head") or "cross"),
            "aux": AUX[task] if method == "transfer" else [], "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "constant": m["constant_baseline"][primary],
            "untrained": (m.get("untrained") or {}).get(primary),
            "measured_sparsity": report["sparsity"], "schedule": report.get("schedule"),
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    """One record per cell and head: a default-head cell never replaces the cross-encoder one it repeats."""
    return r["task"], r["examples"], r["seed"], r["method"], r["head"]


def write(row: dict, command: str) -> None:
    """Add one record to the results file (runners may work side by side)."""
    add_record(RESULTS, row, command, key, {
        "protocol": f"MiniLM-L6 (all-MiniLM-L6-v2), default settings with 6 pruning epochs (bench/prune_cell.py "
                    f"TABLE_SCHEDULE): quick preset (each epoch over at least "
                    f"train.min_epoch_examples=1000 examples), model.head=auto (the bi-encoder for this model on "
                    f"pair tasks; `head` is the head each cell ran), sparsity {SPARSITY}, target training set "
                    "limited to `examples` (stratified, seed; the whole set where smaller), full dev set; transfer: "
                    "the --aux recipe with the transfer benchmark's auxiliary data (up to 20k examples per target). "
                    "Records with head `cross` were measured with the cross-encoder head, before model.head=auto "
                    "picked the bi-encoder: kept as history, not in the curve",
        "machine": machine(),
        "note": "wall_s was measured on 2 cores shared with other work (development, other runners): compare "
                    "metrics, not times",
    }, keep=("bars_at_1000",))


def own_rows() -> list[dict]:
    """This script's records, with their source."""
    if not RESULTS.is_file():
        return []
    return [{**r, "source": display(RESULTS)} for r in json.loads(RESULTS.read_text()).get("records", [])]


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


def cached_bars(bars: dict[str, dict], task: str, seed: int) -> dict:
    """The 1,000-example bars of (task, seed), computed once into `bars` ("task seed" -> {constant, untrained})."""
    cell = f"{task} {seed}"
    if cell not in bars:
        bars[cell] = bars_for(task, FROM_BI_BENCH, seed)
    return bars[cell]


def small_data_rows() -> list[dict]:
    """bench/small_data_default.py's cells: this script's baseline command without a head pin, so the
    learning curve's baseline cells at their size and seed."""
    if not SMALL_DATA_RESULTS.is_file():
        return []
    return [{"task": r["task"], "examples": r["examples"], "train_examples": r["train_examples"], "seed": r["seed"],
             "method": "baseline", "head": head_of(r["head"]), "aux": [], "metric_name": r["metric_name"],
             "teacher": r["teacher"], "pruned": r["pruned"], "constant": r["constant"], "untrained": r.get("untrained"),
             "measured_sparsity": r.get("measured_sparsity"), "command": r.get("command"),
             "source": display(SMALL_DATA_RESULTS)}
            for r in json.loads(SMALL_DATA_RESULTS.read_text()).get("records", [])]


def bi_bench_rows(bars: dict[str, dict]) -> list[dict]:
    """bench/bi_encoder.py's cells at sparsity 0.9 (1,000 examples, baseline and transfer; the 0.9 cell prunes
    the 0.6 cell's teacher of the same seed), as learning-curve rows. Their records keep the untrained bar; the
    constant predictor comes from `bars` (see cached_bars)."""
    if not BI_RESULTS.is_file():
        return []
    rows = []
    for r in json.loads(BI_RESULTS.read_text()).get("records", []):
        if r["sparsity"] != SPARSITY or r["method"] not in METHODS or r.get("pruned") is None:
            continue
        cached = cached_bars(bars, r["task"], r["seed"])
        rows.append({"task": r["task"], "examples": FROM_BI_BENCH, "train_examples": FROM_BI_BENCH, "seed": r["seed"],
                     "method": r["method"], "head": head_of(r["head"]), "aux": r.get("aux", []),
                     "metric_name": r["metric_name"], "teacher": r["teacher"], "pruned": r["pruned"],
                     "constant": cached["constant"],
                     "untrained": r["untrained"] if r.get("untrained") is not None else cached["untrained"],
                     "measured_sparsity": r.get("measured_sparsity"), "command": r.get("command"),
                     "source": display(BI_RESULTS)})
    return rows


def transfer_bench_rows(bars: dict[str, dict]) -> list[dict]:
    """The cross-encoder history's 1,000-example cells, from the transfer benchmark (head `cross`)."""
    if not TRANSFER_RESULTS.is_file():
        return []
    rows = []
    for r in json.loads(TRANSFER_RESULTS.read_text())["records"]:
        if r["sparsity"] != SPARSITY or r["method"] not in METHODS or r["seed"] not in (1, 2, 3):
            continue
        rows.append({"task": r["target"], "examples": FROM_TRANSFER_BENCH, "train_examples": FROM_TRANSFER_BENCH,
                     "seed": r["seed"], "method": r["method"], "head": "cross", "metric_name": r["metric_name"],
                     "teacher": r["teacher_metric"], "pruned": r["metric"], **cached_bars(bars, r["target"], r["seed"]),
                     "measured_sparsity": r.get("measured_sparsity"), "source": display(TRANSFER_RESULTS)})
    return rows


def merged_rows(bars: dict[str, dict], history: bool = True) -> list[dict]:
    """Every cell once per head: this script's records first, then the small-data and bi-encoder benchmarks'
    (and, with `history`, the transfer benchmark's cross-encoder cells), each row naming its `source`."""
    rows: dict[tuple, dict] = {}
    sources = [own_rows(), small_data_rows(), bi_bench_rows(bars)] + ([transfer_bench_rows(bars)] if history else [])
    for source in sources:
        for r in source:
            rows.setdefault(key(r), r)
    return list(rows.values())


def available(bars: dict[str, dict]) -> dict[tuple, str]:
    """(task, examples, seed, method) -> the source file of the default-head cells already measured."""
    return {key(r)[:4]: r["source"] for r in merged_rows(bars, history=False) if r["head"] == HEAD}


def mean_spread(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and standard deviation over seeds (None for one value; both None for none)."""
    if not values:
        return None, None
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def percent(stat: tuple[float | None, float | None]) -> str:
    """A (mean, spread) of fractions as the tables print it: '81.8 ± 0.5', '81.8', or empty."""
    mean, spread = stat
    if mean is None:
        return ""
    return f"{100 * mean:.1f}" + (f" ± {100 * spread:.1f}" if spread is not None else "")


def summary(records: list[dict]) -> dict:
    """Mean and spread over seeds per (task, examples, method, head) of teacher and pruned metrics; the
    seeds of each source."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["task"], r["examples"], r["method"], r["head"]), []).append(r)
    out = {}
    for cell, rows in sorted(groups.items()):
        def stat(field):
            return mean_spread([r[field] for r in rows if r.get(field) is not None])
        sources: dict[str, list[int]] = {}
        for r in sorted(rows, key=lambda r: r["seed"]):
            sources.setdefault(r.get("source", display(RESULTS)), []).append(r["seed"])
        out[cell] = {"seeds": sorted(r["seed"] for r in rows), "sources": sources, "teacher": stat("teacher"),
                     "pruned": stat("pruned"), "untrained": stat("untrained"), "constant": stat("constant"),
                     "metric": rows[0]["metric_name"], "train_examples": rows[0]["train_examples"]}
    return out


def short(source: str) -> str:
    return Path(source).stem


def seeds_cell(cell: dict | None) -> str:
    """'3 (1,2 small_data_default; 3 learning_curve)': how many seeds, and which came from which file."""
    if not cell:
        return ""
    parts = "; ".join(f"{','.join(map(str, seeds))} {short(source)}" for source, seeds in cell["sources"].items())
    return f"{len(cell['seeds'])} ({parts})"


def paired_gains(records: list[dict], task: str, examples: int) -> dict[int, float]:
    """Seed -> the pruned model's transfer gain over the baseline of the same seed (records of one head)."""
    pruned = {(r["method"], r["seed"]): r["pruned"] for r in records if (r["task"], r["examples"]) == (task, examples)}
    return {seed: pruned[("transfer", seed)] - value for (method, seed), value in sorted(pruned.items())
            if method == "baseline" and ("transfer", seed) in pruned}


def gains_table(records: list[dict], head: str = HEAD) -> str:
    """Task by size: each seed's paired transfer gain (pruned, points) and their mean, so that the spread between
    seeds reads next to the differences between sizes."""
    records = [r for r in records if r["head"] == head]
    sizes = sorted({r["examples"] for r in records})
    lines = ["| task (pruned 0.9: transfer minus baseline, same seed) | " + " | ".join(f"{n:,}" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for task in sorted({r["task"] for r in records}):
        metric = next(r["metric_name"] for r in records if r["task"] == task)
        cells = []
        for n in sizes:
            gains = paired_gains(records, task, n)
            each = ", ".join(f"{100 * g:+.1f}" for g in gains.values())
            seeds = ",".join(map(str, gains))
            cells.append(f"{each} (seed {seeds})" if len(gains) == 1 else
                         f"{each} (seeds {seeds}; mean {100 * statistics.mean(gains.values()):+.1f})" if gains else "")
        scale = "" if metric == "accuracy" else " x100"  # accuracy reads in points as it is
        lines.append(f"| {task} ({metric}{scale}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(records: list[dict], head: str = HEAD) -> str:
    """The markdown table of the cells of one head (never a mean over two heads), with the sources' legend."""
    records = [r for r in records if r["head"] == head]
    s = summary(records)
    bar = lambda v: "" if v[0] is None else f"{100 * v[0]:.1f}"  # the same data for every method: no spread to show
    lines = ["| task | train examples | baseline seeds (source) | transfer seeds (source) | untrained (cosine) | constant "
             "| teacher | pruned 0.9 | teacher + transfer | pruned 0.9 + transfer | transfer gain | baseline retained |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for task in sorted({c[0] for c in s}):
        for n in sorted({c[1] for c in s if c[0] == task}):
            base, aux = s.get((task, n, "baseline", head)), s.get((task, n, "transfer", head))
            first = base or aux
            gains = list(paired_gains(records, task, n).values())
            gain = f"{100 * statistics.mean(gains):+.1f} ({len(gains)} seed{'s' if len(gains) > 1 else ''})" if gains else ""
            retained = f"{100 * base['pruned'][0] / base['teacher'][0]:.0f}%" if base else ""
            lines.append(f"| {task} ({first['metric']}) | {first['train_examples']:,} | {seeds_cell(base)} | "
                         f"{seeds_cell(aux)} | {bar(first['untrained'])} | {bar(first['constant'])} | "
                         f"{percent(base['teacher']) if base else ''} | {percent(base['pruned']) if base else ''} | "
                         f"{percent(aux['teacher']) if aux else ''} | {percent(aux['pruned']) if aux else ''} | {gain} | {retained} |")
    used = sorted({r.get("source", display(RESULTS)) for r in records})
    if used:
        lines += ["", "Sources: " + "; ".join(f"{short(u)} = `{u}`" for u in used) + "."]
    return "\n".join(lines)


def tables(records: list[dict]) -> str:
    """The curve's table (head HEAD), then one table per other head found, labelled, as history."""
    text = [f"Default head ({HEAD}-encoder, what model.head=auto picks here): the learning curve", "", table(records),
            "", "Transfer gain per seed (the same cells)", "", gains_table(records)]
    for head in sorted({r["head"] for r in records} - {HEAD}):
        text += ["", f"History, not in the curve: the {head}-encoder cells (model.head={head})", "",
                 table(records, head)]
    return "\n".join(text)


def plot(records: list[dict]) -> None:
    """The curve of the default head only (HEAD): one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary([r for r in records if r["head"] == HEAD])
    tasks = sorted({c[0] for c in s})
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(5 * max(len(tasks), 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sizes = sorted({c[1] for c in s if c[0] == task})
        def line(method, field, **style) -> list[float]:
            points = [(s[(task, n, method, HEAD)]["train_examples"], s[(task, n, method, HEAD)][field]) for n in sizes
                      if (task, n, method, HEAD) in s and s[(task, n, method, HEAD)][field][0] is not None]
            if points:
                ax.errorbar([p[0] for p in points], [p[1][0] for p in points], yerr=[p[1][1] or 0 for p in points],
                            capsize=3, marker="o", **style)
            return [p[1][0] for p in points]
        shown = line("baseline", "teacher", label="dense teacher", color="0.5", linestyle="--")
        shown += line("transfer", "teacher", label="dense teacher + transfer", color="tab:green", linestyle="--")
        shown += line("baseline", "pruned", label="pruned 0.9", color="tab:blue")
        shown += line("transfer", "pruned", label="pruned 0.9 + transfer", color="tab:red")
        shown += line("baseline", "untrained", label="untrained (cosine)", color="k", linestyle=":")
        constant = line("baseline", "constant", label="constant predictor", color="0.7", linestyle=":")
        low, high = min(shown), max(shown)
        margin = 0.1 * (high - low) or 0.01
        if constant and min(constant) < low - 3 * margin:  # a far-away bar (Pearson 0) would flatten the curves
            ax.set_ylim(low - margin, high + margin)
            ax.text(0.02, 0.02, f"constant predictor: {min(constant):.2f} (below)", transform=ax.transAxes,
                    fontsize=8, color="0.4")
        metric = next(v["metric"] for c, v in s.items() if c[0] == task)
        sources = ",\n".join(a.removeprefix("aux/") for a in AUX[task])  # one per line: RTE's three ran into the next panel
        ax.set(xscale="log", xlabel="training examples", ylabel=metric, title=f"{task} -> {sources}")
        ax.grid(alpha=0.3)
    labelled = {}  # every series of any panel, once (a panel may lack some, e.g. transfer not measured yet)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, handle)
    if labelled:
        axes[0][0].legend(list(labelled.values()), list(labelled), fontsize=8)
    fig.suptitle(f"MiniLM-L6 pruned to 0.9, default head ({HEAD}-encoder): learning curve (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(AUX))
    parser.add_argument("--examples", nargs="+", type=int, default=[n for n in SIZES if n != FROM_BI_BENCH])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help=f"at 4,000 examples only seed 1 runs "
                        f"(the issue's plan: {SEEDS_AT})")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, help="torch threads per cell; all cores when empty")
    parser.add_argument("--table", action="store_true", help="print the README tables and draw the plot, run nothing")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    bars = dict(results.get("bars_at_1000", {}))

    def save_bars():  # computed 1,000-example bars, kept in the results file (under its lock)
        if bars != results.get("bars_at_1000", {}):
            with open(RESULTS.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                on_disk = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                write_json(RESULTS, {**on_disk, "bars_at_1000": {**on_disk.get("bars_at_1000", {}), **bars}})
            results["bars_at_1000"] = dict(bars)

    if args.table:
        records = merged_rows(bars)
        save_bars()
        print(tables(records))
        plot(records)
        return
    command = shlex.join(["python", "bench/learning_curve.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    for examples in args.examples:
        for seed in args.seeds:
            for task in args.tasks:
                for method in args.methods:
                    cell = f"{task} n={examples} seed {seed} {method}"
                    if examples in SEEDS_AT and seed not in SEEDS_AT[examples]:
                        print(f"[skip] {cell}: the issue asks seed(s) {SEEDS_AT[examples]} only at {examples:,}", flush=True)
                        continue
                    done = available(bars)
                    save_bars()
                    if (task, examples, seed, method) in done:
                        print(f"[skip] {cell}: in {done[(task, examples, seed, method)]}", flush=True)
                        continue
                    if examples == FROM_BI_BENCH:
                        print(f"[skip] {cell}: the 1,000-example cells are bench/bi_encoder.py's (0.9 prunes its 0.6 "
                              f"cell's teacher); run `python bench/bi_encoder.py --tasks {task} --seeds {seed} "
                              f"--methods {method} --threads 1`", flush=True)
                        continue
                    report, wall, cell_command = run_cell(task, examples, seed, method, args.threads)
                    r = record(task, examples, seed, method, report, wall if wall is not None else report["timing"]["total"],
                               cell_command)
                    r["threads"] = args.threads
                    write(r, command)
                    note = "" if r["head"] == HEAD else f" (head {r['head']}, not {HEAD}: not in the curve)"
                    print(f"[done] {cell} ({r['head']}): teacher {r['teacher']:.4f} pruned {r['pruned']:.4f} "
                          f"({r['wall_s']:.0f}s){note}", flush=True)


if __name__ == "__main__":
    main()
