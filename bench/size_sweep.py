"""How large must a pruned MPNet-base be to beat MiniLM-L6 fine-tuned, and how fast is it then?

bench/size_matched.py prunes all-mpnet-base-v2 to MiniLM-L6's encoder size and finds it below MiniLM-L6 on every
pair at 1,000 training examples. This sweep keeps that protocol (1,000 examples, `model.max_seq_len=64`, the
default head) and today's defaults otherwise (12 pruning epochs, heads and FFN units) and asks for larger
encoders instead: `--multiples 2 4` prunes to 2x and 4x MiniLM-L6's 10,646,784 encoder-layer parameters
(`--target-params`), each run timed beside MiniLM-L6 on one of its training batches (`--speed-reference
minilm`, the report's `speed.reference`). Every cell of one task and seed prunes the same dense teacher
(`teacher.path`): bench/empty_sublayers.py's MPNet teacher of that task, seed and precision when it exists
(trained by the same command settings), else the one the sweep's first cell trains. `--methods transfer` adds
the --aux recipe with bench/size_matched.py's auxiliary data (5,000 examples in all) and today's recipe otherwise
(auxiliary distillation weight 3, where size_matched's --aux cells ran at 1). `--precision fp32` (the default)
suits a CPU without bf16 instructions, where bf16 autocast is emulated and many times slower.

`--latency` then times each pruned model and a fine-tuned MiniLM-L6 of the same task (bench/empty_sublayers.py's
teacher: the architecture is what counts) at deployment shapes, 1 x 128 and 32 x 128, in PyTorch and onnxruntime,
one model at a time, as bench/size_matched.py's latency step does: run it with nothing else on the machine.

    python bench/size_sweep.py --tasks glue/stsb --multiples 2 4 --seeds 1 --threads 2
    python bench/size_sweep.py --latency --tasks glue/stsb --seeds 1 --threads 1   (--retime: all again, side by side)
    python bench/size_sweep.py --table
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
import empty_sublayers  # noqa: E402
import peer_sentence_transformers as peer  # noqa: E402
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
METHODS = ("baseline", "transfer")  # transfer: size_matched's --aux data (5,000 examples), today's recipe otherwise


def cell_name(task: str, multiple: float, seed: int, precision: str, method: str = "baseline") -> str:
    transfer = "_transfer" if method == "transfer" else ""
    return f"{task.split('/')[-1]}_x{multiple:g}{transfer}_{precision}_seed{seed}"


def method_of(r: dict) -> str:
    return r.get("method", "baseline")  # records from before --methods are baseline cells


def teacher_of(task: str, multiples: list[float], seed: int, precision: str,
               method: str = "baseline") -> tuple[Path, bool]:
    """The dense teacher the cells of this task, seed and method prune, and whether it exists already (else the
    first cell trains it): empty_sublayers' MPNet teacher, trained with the same teacher settings, else the sweep's."""
    other = empty_sublayers.WORK / empty_sublayers.cell_name("mpnet", task, method, seed, "skip", precision) / "teacher"
    if (other / "config.json").is_file():
        return other, True
    trained = [folder / "teacher" for folder in sorted(WORK.iterdir()) if (folder / "teacher" / "config.json").is_file()
               and re.fullmatch(cell_name(task, 0, seed, precision, method).replace("_x0", r"_x[0-9.]+"), folder.name)
               ] if WORK.is_dir() else []
    if trained:  # an earlier invocation's first cell, of another size
        return trained[0], True
    return WORK / cell_name(task, min(multiples), seed, precision, method) / "teacher", False


def cell_command(task: str, multiple: float, seed: int, precision: str, teacher: Path | None,
                 method: str = "baseline") -> list[str]:
    """`teacher` None: this cell trains the teacher the others prune."""
    command = ["auxprune", "prune", "--model", "mpnet-base", "--task", task,
               "--target-params", str(round(multiple * MINILM_ENCODER)), "--speed-reference", "minilm",
               "--max-train-examples", str(EXAMPLES), "--seed", str(seed),
               "--output", display(WORK / cell_name(task, multiple, seed, precision, method)), "--overwrite",
               *SETTINGS, "--set", f"train.precision={precision}"]
    if method == "transfer":
        command += size_matched.aux_flags(task, size_matched.MPNET_AUX_EXAMPLES)
    return command + (["--set", f"teacher.path={display(teacher)}"] if teacher is not None else [])


def record(task: str, multiple: float, seed: int, precision: str, report: dict, wall: float, command: str,
           method: str = "baseline") -> dict:
    m = report["metrics"]
    primary = m["primary"]
    layers = report["structure"]["layers"]
    return {"kind": "cell", "task": task, "method": method, "multiple": multiple, "seed": seed, "precision": precision, "metric_name": primary,
            "teacher": m["teacher"][primary], "pruned": m["pruned"][primary],
            "untrained": (m.get("untrained") or {}).get(primary), "requested_params": report["target"]["requested_params"],
            "params": report["params"], "hidden_kept": report["structure"]["hidden_kept"],
            "heads_kept": sum(layer["heads"] for layer in layers),
            "ffn_units_kept": sum(layer["ffn_units"] for layer in layers), "speed": report["speed"],
            "embedding_spread": report.get("embedding_spread"), "head": report["head"]["head"],
            "warnings": report.get("warnings", []), "wall_s": wall, "timing_s": report["timing"], "command": command}


def key(r: dict) -> tuple:
    if r.get("kind") == "latency":
        return "latency", r["model_dir"], r["runtime"], r["threads"]
    return "cell", r["task"], method_of(r), r["precision"], r["multiple"], r["seed"]


def records() -> list[dict]:
    return json.loads(RESULTS.read_text()).get("records", []) if RESULTS.is_file() else []


def cells(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("kind") != "latency"]


def run(tasks: list[str], multiples: list[float], seeds: list[int], threads: int | None, precision: str,
        methods: list[str]) -> None:
    for task in tasks:
        for method in methods:
            for seed in seeds:
                run_cells(task, method, seed, multiples, threads, precision)


def run_cells(task: str, method: str, seed: int, multiples: list[float], threads: int | None, precision: str) -> None:
    teacher, exists = teacher_of(task, multiples, seed, precision, method)
    for multiple in sorted(multiples):
        out = WORK / cell_name(task, multiple, seed, precision, method)
        trains = not exists and teacher == out / "teacher"
        command = cell_command(task, multiple, seed, precision, None if trains else teacher, method)
        report, wall, ran = run_prune(out, command, threads, out.name, resume_as=display(out))
        exists = True
        row = record(task, multiple, seed, precision, report, wall if ran else report["timing"]["total"],
                     shlex.join(command), method)
        add_record(RESULTS, {**row, "threads": threads}, row["command"], key, header())
        reference = row["speed"].get("reference") or {}
        print(f"[done] {out.name}: pruned {row['pruned']:.4f}, {row['params']['encoder_kept']:,} encoder "
              f"parameters, {reference.get('speedup')}x MiniLM-L6's speed", flush=True)


def header() -> dict:
    return {"protocol": f"all-mpnet-base-v2 pruned to a multiple of MiniLM-L6's {MINILM_ENCODER:,} encoder-layer "
                        f"parameters (--target-params), {EXAMPLES:,} training examples, model.max_seq_len=64, today's "
                        "defaults otherwise; every cell of a task and seed prunes one teacher (teacher.path); timed "
                        "beside MiniLM-L6 by the run (--speed-reference minilm)",
            "machine": machine(),
            "note": "wall_s was measured on 2 cores, possibly shared: compare metrics; speed.reference was timed in "
                    "alternation with the pruned model, the latency records one model at a time"}


def latency_models(tasks: list[str], seeds: list[int]) -> list[tuple[dict, Path]]:
    """(which model, its folder) for MiniLM-L6 (one fine-tuned on the task: its architecture is what is timed, so
    any seed's will do, the asked seeds' first; `multiple` None) and every finished sweep cell; which model: task,
    seed, multiple, method."""
    found = []
    for task in tasks:
        minilm_seeds = list(seeds) + [seed for seed in (1, 2, 3) if seed not in seeds]
        minilm = [(seed, empty_sublayers.WORK / empty_sublayers.cell_name("minilm", task, "baseline", seed, "skip")
                   / "teacher") for seed in minilm_seeds]
        found += [({"task": task, "seed": seed, "multiple": None, "method": "baseline"}, path)
                  for seed, path in minilm if (path / "config.json").is_file()][:1]
        for r in cells(records()):
            argv = shlex.split(r["command"])
            model = ROOT / argv[argv.index("--output") + 1] / "model"
            if r["task"] == task and r["seed"] in seeds and (model / "config.json").is_file():
                found.append(({"task": task, "seed": r["seed"], "multiple": r["multiple"], "method": method_of(r)},
                              model))
    return found


def run_latency(tasks: list[str], seeds: list[int], threads: int, warmup: int, iterations: int, min_time: float,
                command: str, retime: bool = False) -> None:
    """`retime`: time models with a record again (replacing it), so that one sitting times a task's models side by
    side; else those are skipped."""
    done = set() if retime else {key(r) for r in records()}
    for which, path in latency_models(tasks, seeds):
        label = latency_label(which)
        for runtime in size_matched.RUNTIMES:
            k = ("latency", display(path), runtime, threads)
            if k in done:
                print(f"[skip] {which['task']} {label} {runtime}: in {RESULTS.name}", flush=True)
                continue
            onnx_dir = WORK / "onnx" / f"{path.parent.name}_{path.name}"
            result = size_matched.measure_latency(path, runtime, onnx_dir, threads, warmup, iterations, min_time)
            add_record(RESULTS, {"kind": "latency", **which, "model_dir": k[1], "runtime": runtime, "threads": threads,
                                 **result, "command": command}, command, key, header())
            p50 = ", ".join(f"{shape} {ms:.1f} ms" for shape, ms in result["latency_ms_p50"].items())
            print(f"[done] {which['task']} {label} {runtime}: {p50}", flush=True)


def minilm_rows(task: str) -> list[tuple[str, str]]:
    """(label, metric) of MiniLM-L6 used as it is (the cosine of its embeddings), dense and dense + transfer on
    `task` (size_matched's rows, 1,000 examples), and fine-tuned by sentence-transformers (the peer tool)."""
    cells = size_matched.minilm_cells(size_matched.records())
    rows = []
    for method, label, field in (("baseline", "untrained MiniLM-L6", "untrained"),
                                 ("baseline", "MiniLM-L6 dense", "teacher"),
                                 ("transfer", "MiniLM-L6 dense + transfer", "teacher")):
        values = [c[field] for (t, m, _), c in cells.items() if t == task and m == method and c.get(field) is not None]
        if values:
            rows.append((label, size_matched.mean_sd(values)))
    if tuned := peer.scores(task):
        rows.append(("MiniLM-L6 fine-tuned by sentence-transformers", size_matched.mean_sd(tuned)))
    return rows


def latency_table(rows: list[dict]) -> str:
    """p50 ms per runtime and shape of each timed model, by task and seed (at the thread count most records have),
    and its time against MiniLM-L6's of the same task in brackets."""
    timed = [r for r in rows if r.get("kind") == "latency"]
    if not timed:
        return ""
    counts = Counter(r["threads"] for r in timed)
    threads = max(counts, key=lambda t: (counts[t], t))
    by_model: dict[tuple, dict[tuple[str, str], float]] = {}
    for r in timed:
        if r["threads"] == threads:
            for shape, ms in r["latency_ms_p50"].items():
                by_model.setdefault((r["task"], r["seed"], r["multiple"], r["method"]), {})[(r["runtime"], shape)] = ms
    columns = [(runtime, shape) for runtime in size_matched.RUNTIMES for shape in size_matched.SHAPES]
    lines = ["| task | model | " + " | ".join(f"{'ort' if runtime == 'onnxruntime' else runtime} {shape} p50 ms"
                                              for runtime, shape in columns) + " |", "|---" * (len(columns) + 2) + "|"]
    # MiniLM-L6 first, then the pruned models by size, each baseline before its --aux twin
    order = lambda k: (TASKS.index(k[0]), k[2] is not None, k[2] or 0.0, METHODS.index(k[3]), k[1])  # noqa: E731
    for task, seed, multiple, method in sorted(by_model, key=order):
        base = next((v for (t, _, m, _), v in by_model.items() if t == task and m is None), {})
        label = latency_label({"seed": seed, "multiple": multiple, "method": method})
        values = []
        for column in columns:
            ms = by_model[(task, seed, multiple, method)].get(column)
            ratio = f" ({ms / base[column]:.2f}x)" if ms is not None and column in base and multiple is not None else ""
            values.append(f"{ms:.1f}{ratio}" if ms is not None else "-")
        lines.append(f"| {task} | {label} | " + " | ".join(values) + " |")
    return "\n".join(lines + ["", f"- latency on {threads} thread(s), one model at a time, random tokens"])


def latency_label(which: dict) -> str:
    if which["multiple"] is None:
        return "MiniLM-L6"
    return f"{model_label(which['multiple'], which['method'] == 'transfer')} (seed {which['seed']})"


def model_label(multiple: float, transfer: bool) -> str:
    return f"MPNet-base pruned to {multiple:g}x MiniLM-L6's encoder" + (" + transfer (--aux)" if transfer else "")


def table(rows: list[dict]) -> str:
    rows = cells(rows)
    lines = ["| task | model | metric (x100) | encoder params | total params | hidden | heads | FFN units "
             "| speed beside MiniLM-L6 (training batch) |", "|---|---|---|---|---|---|---|---|---|"]
    for task in [t for t in TASKS if any(r["task"] == t for r in rows)]:
        own = sorted((r for r in rows if r["task"] == task),
                     key=lambda r: (r["precision"], r["multiple"], METHODS.index(method_of(r)), r["seed"]))
        metric = own[0]["metric_name"]
        for label, value in minilm_rows(task):
            lines.append(f"| {task} ({metric}) | {label} | {value} | {MINILM_ENCODER / 1e6:.1f}M "
                         f"| {size_matched.MINILM_PARAMS['total'] / 1e6:.1f}M | 384 | 72 | 9,216 | 1x |")
        dense = "| 85.1M | 108.9M | 768 | 144 | 36,864 | |"
        for seed, untrained in sorted({(r["seed"], r["untrained"]) for r in own if r["untrained"] is not None}):
            lines.append(f"| {task} ({metric}) | untrained MPNet-base | {100 * untrained:.1f} (seed {seed}) {dense}")
        teachers = {(METHODS.index(method_of(r)), r["precision"], r["seed"], r["teacher"]) for r in own}
        for method, precision, seed, value in sorted(teachers):
            label = "MPNet-base dense" + (" + intermediate training" if METHODS[method] == "transfer" else "")
            lines.append(f"| {task} ({metric}) | {label}, {precision} | {100 * value:.1f} (seed {seed}) {dense}")
        for r in own:
            p, reference = r["params"], r["speed"].get("reference") or {}
            speed = (f"{reference['speedup']:g}x ({reference['pruned_latency_ms']:g} against "
                     f"{reference['latency_ms']:g} ms, {r['speed']['batch_size']} x {r['speed']['seq_len']})"
                     if reference else "-")
            lines.append(f"| {task} ({metric}) | {model_label(r['multiple'], method_of(r) == 'transfer')}, "
                         f"{r['precision']} | {100 * r['pruned']:.1f} (seed {r['seed']}) | {p['encoder_kept'] / 1e6:.1f}M "
                         f"| {p['total'] / 1e6:.1f}M | {r['hidden_kept']} | {r['heads_kept']} | {r['ffn_units_kept']:,} "
                         f"| {speed} |")
    return "\n".join(lines)


def tables(rows: list[dict]) -> str:
    latency = latency_table(rows)
    return table(rows) + (f"\n\n{latency}" if latency else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=["glue/stsb"])
    parser.add_argument("--multiples", nargs="+", type=float, default=[2.0, 4.0],
                        help="encoder sizes, in multiples of MiniLM-L6's encoder-layer parameters")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["baseline"],
                        help="transfer: with bench/size_matched.py's auxiliary data (--aux), today's recipe otherwise")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="fp32")
    parser.add_argument("--latency", action="store_true", help="time the finished cells' models and MiniLM-L6")
    parser.add_argument("--retime", action="store_true",
                        help="with --latency: time again the models already timed, so all are timed in one sitting")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--table", action="store_true", help="print the tables from the results file")
    args = parser.parse_args(argv)
    if args.table:
        print(tables(records()))
        return
    if args.latency:
        run_latency(args.tasks, args.seeds, args.threads or 1, args.warmup, args.iterations, args.min_time,
                    "python bench/size_sweep.py " + shlex.join(argv if argv is not None else sys.argv[1:]), args.retime)
        print(tables(records()))
        return
    if any(m <= 0 or m * MINILM_ENCODER >= 85_054_464 for m in args.multiples):
        parser.error("--multiples: expected sizes between 0 and MPNet-base's 8x MiniLM-L6's encoder")
    run(args.tasks, args.multiples, args.seeds, args.threads, args.precision, args.methods)
    print(tables(records()))


if __name__ == "__main__":
    main()
