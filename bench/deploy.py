"""Issue 21 benchmark: what deploying costs and gains, per model and runtime.

For every pruned run folder and its dense teacher: the dev metric (full dev set), the latency
(p50, random tokens, no padding) at 1 x 128, 8 x 128 and 32 x 128, and the file size, for
fp32 PyTorch (`model.safetensors`), fp32 onnxruntime and int8 onnxruntime (dynamic quantization,
`auxprune export --int8`; its check against fp32 on the first 256 dev examples is recorded too).
Each model runs alone in this process with `--threads` intra-op threads (onnxruntime threads
sleep when idle). ONNX files go to bench/work/deploy/<model>/.

Default runs: the MiniLM-L6 STS-B and MRPC models at 0.6 and 0.9 of bench/bi_encoder.py (seed 1,
no auxiliary task; the bi-encoder, which is what the defaults train for these tasks; their dense
teachers are found as bench/speed.py finds them), and `prune.align` runs: the STS-B 0.9 run again
with `prune.align` 8 and 16 (its saved config.yaml plus `--set prune.align=N`, so the same teacher,
seed and data, made here if their folders are missing, the command in their records); the run
itself is align 1.

Resumable: a cell (model folder, runtime, threads) already in the results file is skipped;
`--rerun` measures again. Every record keeps the exact command that made it. `--table` prints
the README table from the results file.

Run it on an otherwise idle machine: other jobs on the same cores distort every latency.

    python bench/deploy.py                                      # everything (trains the align runs first)
    python bench/deploy.py --runs bench/work/bi_encoder/stsb_bi_s0.9_baseline_seed1 --aligns   # one run, no align runs
    python bench/deploy.py --table
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from auxprune.output import write_json
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from results_file import display  # noqa: E402
from speed import baseline_for  # noqa: E402  (bench/speed.py: the run's dense teacher)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "deploy.json"
DEFAULT_RUNS = [WORK / "bi_encoder" / f"{task}_bi_s{s}_baseline_seed1" for task in ("stsb", "mrpc") for s in (0.6, 0.9)]
ALIGN_BASE = WORK / "bi_encoder" / "stsb_bi_s0.9_baseline_seed1"
RUNTIMES = ("torch", "onnxruntime", "onnxruntime-int8")
SHAPES = ("1x128", "8x128", "32x128")


def finished(run: Path) -> bool:
    report = run / "report.json"
    return report.is_file() and json.loads(report.read_text(encoding="utf-8")).get("status") == "ok"


def align_run(base: Path, align: int, data_dir: str | None) -> Path:
    """`base` pruned again with `prune.align` = `align` (its own config otherwise: the same teacher, seed
    and data); `base` itself when that is its alignment. Trained here when missing; resumed when interrupted."""
    import yaml

    if not finished(base):
        raise SystemExit(f"{display(base)}: not a finished run; run bench/bi_encoder.py --tasks glue/stsb --seeds 1 first")
    if yaml.safe_load((base / "config.yaml").read_text(encoding="utf-8"))["prune"].get("align", 1) == align:
        return base
    out = base.parent / f"{base.name}_align{align}"
    if finished(out):
        return out
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        command = [sys.executable, "-m", "auxprune.cli", "prune", "--resume", display(out)]
    else:
        command = [sys.executable, "-m", "auxprune.cli", "prune", "--config", display(base / "config.yaml"),
                   "--set", f"prune.align={align}", "--output", display(out), "--overwrite"]
    if data_dir:
        command += ["--data-dir", data_dir]
    print(f"[train] {out.name}: {shlex.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)  # the saved config's teacher.path is relative to the repository
    return out


def dense_name(teacher: Path) -> str:
    """A dense model's row name: its folder, with the run's name when it is a run's `teacher/`."""
    return f"{teacher.parent.name}/{teacher.name}" if teacher.name == "teacher" else teacher.name


# ------------------------------------------------------------------------------------------ cells

def latency_per_shape(model_dir: Path, onnx_file: Path | None, shapes, threads: int, warmup: int, iterations: int,
                      min_time: float) -> dict:
    """`summarize` per shape ("BATCHxSEQ_LEN") of one model timed alone on random tokens: the PyTorch model
    of `model_dir`, or the ONNX file `onnx_file` with onnxruntime (bench/size_matched.py's latency step
    times its models with it too)."""
    from auxprune.evaluate import load
    from auxprune.export import ort_session
    from auxprune.model.configuration import AuxpruneConfig
    from auxprune.model.inputs import random_inputs
    from auxprune.speed import _ort_runner, summarize, time_alternating, torch_runner

    if onnx_file is None:
        model = load(model_dir)[0]
        runner = lambda inputs: torch_runner(model, inputs)  # noqa: E731
    else:
        session = ort_session(onnx_file, threads=threads, spinning=False)
        runner = lambda inputs: _ort_runner(session, inputs)  # noqa: E731
    vocab_size = AuxpruneConfig.from_pretrained(model_dir).vocab_size
    latency = {}
    for shape in shapes:
        batch, seq_len = (int(x) for x in shape.split("x"))
        inputs = random_inputs(batch, seq_len, vocab_size)
        seconds, _ = time_alternating(runner(inputs), lambda: None, warmup, iterations, min_time)  # one model alone
        latency[shape] = summarize(seconds, batch)
    return latency


def measure(model_dir: Path, runtime: str, out_dir: Path, shapes: list[str], threads: int, warmup: int,
            iterations: int, min_time: float, data_dir: str | None) -> dict:
    """Dev metric, latency per shape and file size of one model folder under one runtime."""
    from auxprune.evaluate import evaluate_saved
    from auxprune.export import export_onnx
    from auxprune.quantize import export_int8

    torch.set_num_threads(threads)
    extra: dict = {}
    if runtime == "torch":
        target = model_dir
        size_file = model_dir / "model.safetensors"
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        size_file = target = out_dir / ("int8.onnx" if runtime.endswith("int8") else "fp32.onnx")
        if runtime.endswith("int8"):
            extra["check"] = export_int8(model_dir, target, data_dir=data_dir)["check"]
        else:
            extra["check"] = {"max_abs_diff": export_onnx(model_dir, target)["max_abs_diff"]}
    started = time.perf_counter()
    evaluation = evaluate_saved(target, data_dir=data_dir)
    eval_seconds = time.perf_counter() - started
    latency = latency_per_shape(model_dir, None if runtime == "torch" else target, shapes, threads, warmup, iterations,
                                min_time)
    return {"runtime": runtime, "precision": "int8" if runtime.endswith("int8") else "fp32",
            "task": evaluation["task"], "dev_examples": evaluation["dev_examples"], "metrics": evaluation["metrics"],
            "eval_seconds": round(eval_seconds, 1), "latency": latency,
            "latency_ms_p50": {s: v["latency_ms_p50"] for s, v in latency.items()},
            "file": display(size_file), "bytes": size_file.stat().st_size, **extra}


def record_key(record: dict) -> tuple:
    return (record["model_dir"], record["runtime"], record["threads"])


def load_records(path: Path) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    return {record_key(r): r for r in json.loads(path.read_text(encoding="utf-8")).get("records", [])}


def save(path: Path, records: dict[tuple, dict]) -> None:
    import onnxruntime

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {
        "benchmark": "issue 21: dev metric, latency and size of fp32 torch / fp32 onnxruntime / int8 onnxruntime",
        "protocol": "full dev set; latency p50 over random-token batches without padding, warm-up then timed calls, "
                    "one model at a time; int8 = onnxruntime dynamic quantization (MatMul weights int8, embeddings uint8)",
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "records": sorted(records.values(), key=lambda r: (r["model"], RUNTIMES.index(r["runtime"]), r["threads"])),
    })


# ------------------------------------------------------------------------------------------ table

def table(records: list[dict]) -> str:
    """Markdown: one row per model and runtime; then the issue's targets per pruned model."""
    lines = ["| model | runtime | dev metric (x100) | " + " | ".join(f"p50 ms {s}" for s in SHAPES) + " | MB |",
             "|---|---|---|" + "---|" * len(SHAPES) + "---|"]
    for r in records:
        primary = next(iter(r["metrics"]))
        lines.append(f"| {r['model']} | {r['runtime']} | {primary} {100 * r['metrics'][primary]:.1f} | "
                     + " | ".join(f"{r['latency_ms_p50'][s]:.1f}" if s in r["latency_ms_p50"] else "-" for s in SHAPES)
                     + f" | {r['bytes'] / 1e6:.1f} |")
    by = {(r["model"], r["runtime"]): r for r in records}
    notes = []
    for r in records:
        if r["runtime"] != "onnxruntime-int8":
            continue
        fp32 = by.get((r["model"], "torch"))
        if fp32 is None:
            continue
        primary = next(iter(r["metrics"]))
        drop = 100 * (fp32["metrics"][primary] - r["metrics"][primary])
        note = f"- {r['model']}: int8 {primary} {-drop:+.1f} points against fp32 torch (target: at most 1.0 below)"
        dense = by.get((r.get("teacher") or "", "torch"))
        if dense is not None and "32x128" in r["latency_ms_p50"]:
            note += (f"; {dense['latency_ms_p50']['32x128'] / r['latency_ms_p50']['32x128']:.1f}x faster than the dense "
                     "fp32 torch model at 32 x 128")
        note += f"; {fp32['bytes'] / r['bytes']:.1f}x smaller than model.safetensors"
        onnx32 = by.get((r["model"], "onnxruntime"))
        if onnx32 is not None:
            note += f", {onnx32['bytes'] / r['bytes']:.1f}x smaller than the fp32 ONNX file"
        notes.append(note)
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", type=Path, default=DEFAULT_RUNS, help="pruned run folders")
    parser.add_argument("--aligns", nargs="*", type=int, default=[1, 8, 16],
                        help="prune.align values for the align runs (none: skip them)")
    parser.add_argument("--align-base", type=Path, default=ALIGN_BASE, help="the run the align runs repeat")
    parser.add_argument("--work", type=Path, default=WORK, help="where the ONNX files go (WORK/deploy/)")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), help="BATCHxSEQ")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--data-dir", help="folder holding glue/ (default: $AUXPRUNE_DATA_DIR)")
    parser.add_argument("--rerun", action="store_true", help="measure cells again even when the results file has them")
    parser.add_argument("--table", action="store_true", help="print the table from the results file and stop")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    records = load_records(args.output)
    if args.table:
        print(table(list(records.values())))
        return 0
    command = "python bench/deploy.py" + (" " + shlex.join(argv) if argv else "")
    runs = [Path(r) for r in args.runs]
    missing = [display(r) for r in runs if not finished(r)]
    if missing:  # the default runs are bench/bi_encoder.py's seed-1 baseline cells
        raise SystemExit(f"{', '.join(missing)}: not a finished run; the default runs come from "
                         "`python bench/bi_encoder.py --seeds 1 --methods baseline`")
    runs += [r for r in (align_run(args.align_base, a, args.data_dir) for a in args.aligns) if r not in runs]
    models: dict[Path, dict] = {}
    for run in runs:
        teacher = baseline_for(run)
        models[(run / "model").resolve()] = {"model": run.name, "kind": "pruned", "teacher": teacher and dense_name(teacher)}
        if teacher is not None:
            models.setdefault(teacher.resolve(), {"model": dense_name(teacher), "kind": "dense", "teacher": None})
    for model_dir, info in models.items():
        for runtime in args.runtimes:
            key = (display(model_dir), runtime, args.threads)
            if key in records and not args.rerun:
                print(f"[skip] {info['model']} {runtime}: in {display(args.output)}", flush=True)
                continue
            result = measure(model_dir, runtime, args.work / "deploy" / info["model"], args.shapes, args.threads,
                             args.warmup, args.iterations, args.min_time, args.data_dir)
            records[key] = {**info, "model_dir": key[0], "threads": args.threads, **result, "command": command}
            save(args.output, records)  # after every cell: an interrupted run keeps what it measured
            p50 = ", ".join(f"{s} {v:.1f} ms" for s, v in result["latency_ms_p50"].items())
            print(f"[done] {info['model']} {runtime}: {result['metrics']} | {p50} | {result['bytes'] / 1e6:.1f} MB", flush=True)
    print(table(list(load_records(args.output).values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
