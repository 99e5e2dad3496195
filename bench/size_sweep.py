"""How large must a pruned MPNet-base be to beat MiniLM-L6 fine-tuned, and how fast is it then?

bench/size_matched.py prunes all-mpnet-base-v2 to MiniLM-L6's encoder size and finds it below MiniLM-L6 on every
pair at 1,000 training examples. This sweep keeps that protocol (1,000 examples, `model.max_seq_len=64`, the
default head) and today's defaults otherwise (12 pruning epochs, heads and FFN units) and asks for larger
encoders instead: `--multiples 2 4` prunes to 2x and 4x MiniLM-L6's 10,646,784 encoder-layer parameters
(`--target-params`), each run timed beside MiniLM-L6 on one of its training batches (`--speed-reference
minilm`, the report's `speed.reference`). Every cell of one task and seed prunes the same dense teacher
(`teacher.path`): bench/empty_sublayers.py's MPNet teacher of that task, seed and precision when it exists
(trained by the same command settings), else the one the sweep's first cell trains. `--precision fp32` (the
default) suits a CPU without bf16 instructions, where bf16 autocast is emulated and many times slower.

    python bench/size_sweep.py --tasks glue/stsb --multiples 2 4 --seeds 1 --threads 2
    python bench/size_sweep.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import empty_sublayers  # noqa: E402
import size_matched  # noqa: E402
from prune_cell import run_prune  # noqa: E402
from results_file import add_record, display, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "size_sweep.json"
WORK = ROOT / "bench" / "work" / "size_sweep"
TASKS = ("glue/stsb", "glue/mrpc", "glue/rte")
MINILM_ENCODER = size_matched.MINILM_PARAMS["encoder"]
EXAMPLES = 1000
SETTINGS = ["--set", "model.max_seq_len=64"]  # size_matched's MPNet shortening


def cell_name(task: str, multiple: float, seed: int, precision: str) -> str:
    return f"{task.split('/')[-1]}_x{multiple:g}_{precision}_seed{seed}"


def teacher_of(task: str, multiples: list[float], seed: int, precision: str) -> tuple[Path, bool]:
    """The dense teacher the cells of this task and seed prune, and whether it exists already (else the first
    cell trains it): empty_sublayers' MPNet teacher, trained with the same teacher settings, else the sweep's own."""
    other = empty_sublayers.WORK / empty_sublayers.cell_name("mpnet", task, "baseline", seed, "skip", precision) / "teacher"
    if (other / "config.json").is_file():
        return other, True
    own = WORK / cell_name(task, min(multiples), seed, precision) / "teacher"
    return own, (own / "config.json").is_file()


def cell_command(task: str, multiple: float, seed: int, precision: str, teacher: Path | None) -> list[str]:
    """`teacher` None: this cell trains the teacher the others prune."""
    command = ["auxprune", "prune", "--model", "mpnet-base", "--task", task,
               "--target-params", str(round(multiple * MINILM_ENCODER)), "--speed-reference", "minilm",
               "--max-train-examples", str(EXAMPLES), "--seed", str(seed),
               "--output", display(WORK / cell_name(task, multiple, seed, precision)), "--overwrite",
               *SETTINGS, "--set", f"train.precision={precision}"]
    return command + (["--set", f"teacher.path={display(teacher)}"] if teacher is not None else [])


def record(task: str, multiple: float, seed: int, precision: str, report: dict, wall: float, command: str) -> dict:
    m = report["metrics"]
    primary = m["primary"]
    layers = report["structure"]["layers"]
    return {"task": task, "multiple": multiple, "seed": seed, "precision": precision, "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "untrained": (m.get("untrained") or {}).get(primary), "requested_params": report["target"]["requested_params"],
            "params": report["params"], "hidden_kept": report["structure"]["hidden_kept"],
            "heads_kept": sum(layer["heads"] for layer in layers),
            "ffn_units_kept": sum(layer["ffn_units"] for layer in layers), "speed": report["speed"],
            "embedding_spread": report.get("embedding_spread"), "head": report["head"]["head"],
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    return r["task"], r["precision"], r["multiple"], r["seed"]


def records() -> list[dict]:
    return json.loads(RESULTS.read_text()).get("records", []) if RESULTS.is_file() else []


def run(tasks: list[str], multiples: list[float], seeds: list[int], threads: int | None, precision: str) -> None:
    for task in tasks:
        for seed in seeds:
            teacher, exists = teacher_of(task, multiples, seed, precision)
            for multiple in sorted(multiples):
                out = WORK / cell_name(task, multiple, seed, precision)
                trains = not exists and teacher == out / "teacher"
                command = cell_command(task, multiple, seed, precision, None if trains else teacher)
                report, wall, ran = run_prune(out, command, threads, out.name, resume_as=display(out))
                exists = True
                row = record(task, multiple, seed, precision, report, wall if ran else report["timing"]["total"],
                             shlex.join(command))
                add_record(RESULTS, {**row, "threads": threads}, row["command"], key, {
                    "protocol": f"all-mpnet-base-v2 pruned to a multiple of MiniLM-L6's {MINILM_ENCODER:,} encoder-layer "
                                f"parameters (--target-params), {EXAMPLES:,} training examples, model.max_seq_len=64, "
                                "today's defaults otherwise; every cell of a task and seed prunes one teacher "
                                "(teacher.path); timed beside MiniLM-L6 by the run (--speed-reference minilm)",
                    "machine": machine(),
                    "note": "wall_s and latencies were measured on 2 cores, possibly shared: compare metrics; the "
                            "speed ratios were timed in alternation and are the figure to read"})
                reference = row["speed"].get("reference") or {}
                print(f"[done] {out.name}: pruned {row['pruned']:.4f}, {row['params']['encoder_kept']:,} encoder "
                      f"parameters, {reference.get('speedup')}x MiniLM-L6's speed", flush=True)


def minilm_rows(task: str) -> list[tuple[str, str]]:
    """(label, metric) of MiniLM-L6 dense and dense + transfer on `task` (size_matched's rows, 1,000 examples)."""
    cells = size_matched.minilm_cells(size_matched.records())
    rows = []
    for method, label in (("baseline", "MiniLM-L6 dense"), ("transfer", "MiniLM-L6 dense + transfer")):
        values = [100 * c["teacher"] for (t, m, _), c in cells.items() if t == task and m == method]
        if values:
            spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            rows.append((label, f"{statistics.mean(values):.1f}{spread} ({len(values)})"))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| task | model | metric (x100) | encoder params | total params | hidden | heads | FFN units "
             "| speed beside MiniLM-L6 (training batch) |", "|---|---|---|---|---|---|---|---|---|"]
    for task in [t for t in TASKS if any(r["task"] == t for r in rows)]:
        own = sorted((r for r in rows if r["task"] == task), key=lambda r: (r["precision"], r["multiple"], r["seed"]))
        metric = own[0]["metric_name"]
        for label, value in minilm_rows(task):
            lines.append(f"| {task} ({metric}) | {label} | {value} | {MINILM_ENCODER / 1e6:.1f}M "
                         f"| {size_matched.MINILM_PARAMS['total'] / 1e6:.1f}M | 384 | 72 | 9,216 | 1x |")
        for teacher in sorted({(r["precision"], r["seed"], r["teacher"], r["untrained"]) for r in own}):
            precision, seed, value, untrained = teacher
            if untrained is not None:
                lines.append(f"| {task} ({metric}) | untrained MPNet-base | {100 * untrained:.1f} (seed {seed}) "
                             f"| 85.1M | 108.9M | 768 | 144 | 36,864 | |")
            lines.append(f"| {task} ({metric}) | MPNet-base dense, {precision} | {100 * value:.1f} (seed {seed}) "
                         f"| 85.1M | 108.9M | 768 | 144 | 36,864 | |")
        for r in own:
            p, reference = r["params"], r["speed"].get("reference") or {}
            speed = (f"{reference['speedup']:g}x ({reference['pruned_latency_ms']:g} against "
                     f"{reference['latency_ms']:g} ms, {r['speed']['batch_size']} x {r['speed']['seq_len']})"
                     if reference else "-")
            lines.append(f"| {task} ({metric}) | MPNet-base pruned to {r['multiple']:g}x MiniLM-L6's encoder, "
                         f"{r['precision']} | {100 * r['pruned']:.1f} (seed {r['seed']}) | {p['encoder_kept'] / 1e6:.1f}M "
                         f"| {p['total'] / 1e6:.1f}M | {r['hidden_kept']} | {r['heads_kept']} | {r['ffn_units_kept']:,} "
                         f"| {speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=["glue/stsb"])
    parser.add_argument("--multiples", nargs="+", type=float, default=[2.0, 4.0],
                        help="encoder sizes, in multiples of MiniLM-L6's encoder-layer parameters")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="fp32")
    parser.add_argument("--table", action="store_true", help="print the table from the results file")
    args = parser.parse_args(argv)
    if args.table:
        print(table(records()))
        return
    if any(m <= 0 or m * MINILM_ENCODER >= 85_054_464 for m in args.multiples):
        parser.error("--multiples: expected sizes between 0 and MPNet-base's 8x MiniLM-L6's encoder")
    run(args.tasks, args.multiples, args.seeds, args.threads, args.precision)
    print(table(records()))


if __name__ == "__main__":
    main()
