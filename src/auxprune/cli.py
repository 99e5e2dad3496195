"""The `auxprune` command: prune, eval, inspect, export, predict, bench, embed.

User mistakes print one line and exit 2; internal errors print one line and exit 1; `--debug`
shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from auxprune.errors import UserError


def _add_prune(sub) -> None:
    p = sub.add_parser("prune", help="prune a pre-trained encoder for a task into a smaller model")
    p.add_argument("--model", help="HF model folder (BERT, RoBERTa, MPNet), 'minilm' (default) or 'mpnet-base'")
    p.add_argument("--task", help="glue/rte, glue/mrpc, glue/stsb, glue/cola, glue/sst2, or a data file")
    p.add_argument("--data-dir", help="folder holding glue/ (default: $AUXPRUNE_DATA_DIR)")
    size = p.add_argument_group("how small (one of; default --sparsity 0.6)")
    size.add_argument("--sparsity", type=float, help="target sparsity of the encoder layers, in [0, 1)")
    size.add_argument("--target-params", type=int, metavar="N",
                      help="prune the encoder layers to N parameters (counted as the report counts them)")
    size.add_argument("--size-of", metavar="MODEL",
                      help="prune the encoder layers to the size of MODEL's: 'minilm', a Hugging Face folder, or an "
                           "auxprune run")
    p.add_argument("--speed-reference", metavar="MODEL",
                   help="time the pruned model beside MODEL ('minilm', a Hugging Face folder, or an auxprune run) on a "
                        "training batch, and score it as it is where it is a sentence encoder and the task has pairs "
                        "(default: the --size-of model)")
    p.add_argument("--max-train-examples", type=int, help="limit the training set (stratified for classes)")
    p.add_argument("--seed", type=int)
    p.add_argument("--preset", default="quick", help="quick (CPU, minutes) or full (CoFi-like, GPU)")
    p.add_argument("--config", help="YAML file with config sections")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config field, e.g. prune.epochs=5")
    t = p.add_argument_group("transfer from auxiliary tasks")
    t.add_argument("--aux", action="append", default=[], metavar="SOURCE",
                   help="auxiliary task: GLUE name, data file (e.g. aux/snli_dev.tsv), 'mlm' or 'mlm:FILE'; repeatable")
    t.add_argument("--how", choices=["none", "sequential", "joint"],
                   help="how the tasks are coupled (default: joint when --aux is given, with an auxiliary-trained "
                        "teacher and distillation on auxiliary inputs: the measured recipe)")
    t.add_argument("--what", choices=["weights", "masks", "both"],
                   help="what is transferred (default: weights for sequential fine-tuning, else both)")
    t.add_argument("--share", choices=["hard", "tied"], help="hard-shared or softly tied copies (default: hard)")
    t.add_argument("--when", choices=["constant", "linear_decay", "cosine", "window"],
                   help="schedule of the auxiliary weight (default: linear_decay)")
    p.add_argument("--output", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its newest checkpoint (with its saved config)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="data-parallel processes on this machine (gloo on the CPU): each takes batch_size / N of every "
                        "batch; as `accelerate launch --num_processes N -m auxprune prune ...`")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="recompute a saved model's dev metrics")
    p.add_argument("model_dir", help="run folder, its model/ folder, or an .onnx export (fp32 or int8)")
    p.add_argument("--task", help="task to evaluate on (default: the task the model was pruned for)")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--json", action="store_true", help="print JSON only")


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="show a saved model's structure and parameter counts")
    p.add_argument("model_dir")
    p.add_argument("--json", action="store_true")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a saved model to ONNX (checked against PyTorch with onnxruntime), fp32 or int8")
    p.add_argument("model_dir", help="run folder or its model/ folder; with --int8 also an fp32 .onnx export")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    q = p.add_argument_group("int8 (dynamic quantization with onnxruntime)")
    q.add_argument("--int8", action="store_true", help="write a dynamic-int8 graph, compared with fp32 on real dev inputs")
    q.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default: per output channel)")
    q.add_argument("--data-dir", help="folder holding glue/ for the check on dev inputs (default: $AUXPRUNE_DATA_DIR)")
    q.add_argument("--check-examples", type=int, default=256, help="dev examples the int8 check runs on (default 256)")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="label (and probability) or regression value for one text or text pair")
    p.add_argument("model_dir", help="run folder, its model/ folder, or an .onnx export (fp32 or int8)")
    p.add_argument("text")
    p.add_argument("pair", nargs="?", help="second text, for sentence-pair tasks")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="sentence embeddings of a text file (a bi-encoder's, model.head=bi)")
    p.add_argument("model_dir", help="run folder or its model/ folder")
    p.add_argument("input", help=".txt (one text per line) or .jsonl (one object per line, see --field)")
    p.add_argument("--output", required=True, help=".npy (float32 matrix, input order) or .jsonl (text and embedding per line)")
    p.add_argument("--field", default="text", help="the text's field in a .jsonl input (default: text)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-normalize", action="store_true", help="keep the pooled vectors' length (default: unit length)")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="latency and throughput of a pruned model against its dense baseline")
    p.add_argument("model_dir", help="run folder or its model/ folder")
    p.add_argument("--baseline", metavar="DENSE_MODEL_DIR",
                   help="dense model to compare with (default: the run's teacher; else the dense shape with random weights)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--runtime", choices=["torch", "onnxruntime", "onnxruntime-int8", "all"], default="torch",
                   help="all: torch, onnxruntime (fp32) and onnxruntime-int8, in one process")
    p.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's default)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per model")
    p.add_argument("--iterations", type=int, default=20, help="timed calls per model (at least)")
    p.add_argument("--min-time", type=float, default=1.0, help="keep timing until this many seconds have passed")
    p.add_argument("--output", help="also write the JSON result to this file")
    p.add_argument("--json", action="store_true", help="print JSON only (an object; a list with --runtime all)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="auxprune", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    _add_prune(sub)
    _add_eval(sub)
    _add_inspect(sub)
    _add_export(sub)
    _add_predict(sub)
    _add_bench(sub)
    _add_embed(sub)
    return p


def prune_config(args: argparse.Namespace):
    from auxprune.config import build_config, parse_assignment

    flags: dict = {}
    if args.model is not None:
        flags.setdefault("model", {})["name"] = args.model
    if args.task is not None:
        flags.setdefault("data", {})["task"] = args.task
    if args.data_dir is not None:
        flags.setdefault("data", {})["data_dir"] = args.data_dir
    if args.max_train_examples is not None:
        flags.setdefault("data", {})["max_train_examples"] = args.max_train_examples
    if args.sparsity is not None:
        flags.setdefault("prune", {})["target_sparsity"] = args.sparsity
    if args.target_params is not None:
        flags.setdefault("prune", {})["target_params"] = args.target_params
    if args.size_of is not None:
        flags.setdefault("prune", {})["size_of"] = args.size_of
    if args.speed_reference is not None:
        flags.setdefault("prune", {})["speed_reference"] = args.speed_reference
    if args.seed is not None:
        flags["seed"] = args.seed
    if args.aux:
        flags.setdefault("transfer", {})["aux"] = [{"task": source} for source in args.aux]
    for name in ("how", "what", "share", "when"):
        if getattr(args, name) is not None:
            flags.setdefault("transfer", {})[name] = getattr(args, name)
    # Explicit flags win over the config file; --set wins over everything.
    return build_config(args.preset, args.config, [flags] + [parse_assignment(s) for s in args.set])


# Library messages name config fields and Python arguments (notebook users read them too); on the
# command line the same choices are flags. (library wording as a regex, what the CLI prints instead).
CLI_WORDING = (
    (r"^transfer\.aux(?=[ :])", "--aux"),  # sources: `transfer.aux mlm:FILE: ...`
    (r"\(transfer\.aux\)", "(--aux)"),
    (r"\((teacher\.epochs|teacher\.lr|prune\.epochs|model\.head)=", r"(--set \1="),  # the remedies in warnings
    (r": data\.max_train_examples\)", ": --max-train-examples)"),
    (r"\(data\.max_train_examples=(\d+) of", r"(--max-train-examples \1 of"),
    (r"^preset '", "--preset '"),
    (r"choose one with model\.pooling=", "choose one with --set model.pooling="),
    (r"written by a prune job \(a Hugging Face checkpoint is what a prune job takes as model\.name\)",
     "written by `auxprune prune` (a Hugging Face checkpoint is pruned with --model)"),
    (r"set data\.data_dir or ", "pass --data-dir or set "),
    (r"\(overwrite=True replaces it\)", "(pass --overwrite to replace it)"),
    (r"\(work so far is kept: resume=True continues (.+)\)$", r"(work so far is kept: auxprune prune --resume \1)"),
    # the command backends (speed, export, quantize, evaluate, embed) name their parameters
    (r"(?<![\w.])(threads|runtime|batch_size|seq_len|iterations|warmup|check_examples|opset|task|baseline)=",
     lambda m: f"--{m.group(1).replace('_', '-')} "),
    (r"^int8 quantization: ", "--int8: "),
    (r"int8 export checks task predictions", "--int8 checks task predictions"),
    (r"; an opset applies to", "; --opset applies to"),
    (r"the model does not record its task; give the task$", "the model does not record its task; pass --task"),
)


def cli_wording(message: str) -> str:
    """A library message as the command line says it: flags where the library names fields."""
    for pattern, flag in CLI_WORDING:
        message = re.sub(pattern, flag, message)
    return message


# Options that define a run: a resumed run takes them all from its saved config.yaml.
RUN_OPTIONS = ("model", "task", "data_dir", "sparsity", "target_params", "size_of", "speed_reference",
               "max_train_examples", "seed", "config", "set", "output", "overwrite", "aux", "how", "what", "share", "when")


def resume_config(args: argparse.Namespace):
    from auxprune.config import read_yaml, validate

    given = [f"--{name.replace('_', '-')}" for name in RUN_OPTIONS if getattr(args, name) not in (None, False, [])]
    if args.preset != "quick":
        given.append("--preset")
    if given:
        raise UserError(f"--resume continues a run with its saved config.yaml; drop {', '.join(given)}")
    run = Path(args.resume)
    if not (run / "config.yaml").is_file():
        raise UserError(f"--resume {run}: not a run folder (expected {run / 'config.yaml'})")
    report = run / "report.json"
    if report.is_file() and json.loads(report.read_text(encoding="utf-8")).get("status") == "ok":
        raise UserError(f"--resume {run}: this run has already finished (report.json status ok)")
    return validate(read_yaml(run / "config.yaml")), run


def cmd_prune(args: argparse.Namespace, argv: list[str]) -> int:
    from auxprune import distributed
    from auxprune.checkpoint import Stopped
    from auxprune.pipeline import run_prune
    from auxprune.summary import print_prune_summary

    if args.processes is not None and args.processes < 1:
        raise UserError(f"--processes {args.processes}: expected a number of processes, 1 or more")
    if args.resume:
        config, output = resume_config(args)
    elif args.output is None:
        raise UserError("prune: --output is required (or --resume RUN_DIR)")
    else:
        config, output = prune_config(args), Path(args.output)
    if args.processes is not None and args.processes > 1:
        if distributed.processes() > 1:
            raise UserError("--processes: this command already runs in several processes; "
                            "drop --processes under accelerate launch")
        from auxprune.checkpoint import Checkpointer
        from auxprune.pipeline import check_processes

        # What the processes would refuse, refused once here before starting them.
        check_processes(config, output, Checkpointer(output).latest() if args.resume else None, args.processes)
        launched = without_option(argv, "--processes")
        if config.train.precision == "auto":  # chosen once here, so that every process trains in the same one
            from auxprune.precision import choose_precision

            launched += ["--set", f"train.precision={choose_precision('auto')[0]}"]
        return distributed.launch(launched, args.processes)
    try:
        report = run_prune(config, output, overwrite=args.overwrite, resume=bool(args.resume))
    except Stopped as stop:
        if distributed.is_main():
            again = f" --processes {distributed.processes()}" if distributed.processes() > 1 else ""
            print(f"auxprune: stopped; checkpoint saved ({stop.checkpoint.name}). "
                  f"Continue with: auxprune prune --resume {output}{again}", file=sys.stderr)
        return 130
    if distributed.is_main():
        print_prune_summary(report, output)
    return 0


def without_option(argv: list[str], name: str) -> list[str]:
    """`argv` without `name VALUE` / `name=VALUE`: the command each launched process runs."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            kept.append(arg)
    return kept


def cmd_eval(args: argparse.Namespace) -> int:
    from auxprune.evaluate import evaluate_saved
    from auxprune.summary import print_metrics

    result = evaluate_saved(args.model_dir, task=args.task, data_dir=args.data_dir, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_metrics(result)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from auxprune.evaluate import inspect_saved
    from auxprune.summary import print_structure

    info = inspect_saved(args.model_dir)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_structure(info)
    return 0


@contextmanager
def flag_of(flag: str, path):
    """A library error about the file `path` says which flag gave it: `--onnx PATH: ...`."""
    try:
        yield
    except UserError as err:
        if str(err).startswith((f"{path}:", f"{Path(path)}:")):
            raise UserError(f"{flag} {err}") from err
        raise


def cmd_export(args: argparse.Namespace) -> int:
    from auxprune.export import OPSET, export_onnx
    from auxprune.onnx_runtime import is_onnx_file

    if args.int8:
        from auxprune.quantize import export_int8

        with flag_of("--onnx", args.onnx):
            result = export_int8(args.model_dir, args.onnx, opset=args.opset, per_channel=not args.per_tensor,
                                 verify=not args.no_verify, data_dir=args.data_dir,
                                 check_examples=args.check_examples)
    elif is_onnx_file(args.model_dir):
        raise UserError(f"{args.model_dir}: an ONNX file is only a source for --int8; export from the model folder")
    else:
        with flag_of("--onnx", args.onnx):
            result = export_onnx(args.model_dir, args.onnx, verify=not args.no_verify, opset=args.opset or OPSET)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.int8:
        print(f"wrote {result['onnx']} (int8, {result['bytes'] / 1e6:.1f} MB, "
              f"{result['fp32_bytes'] / result['bytes']:.1f}x smaller than fp32's {result['fp32_bytes'] / 1e6:.1f} MB)")
        if "check" in result:
            c = result["check"]
            found = [f"max |logit diff| {c['max_abs_diff']:.3g}" if "max_abs_diff" in c else None,
                     f"predictions agree {c['agreement']:.1%}" if "agreement" in c else None,
                     f"Pearson {c['pearson']:.4f}" if "pearson" in c else None,
                     f"max |embedding diff| {c['max_abs_embedding_diff']:.3g}" if "max_abs_embedding_diff" in c else None]
            print(f"  against {c['reference']} on {c['inputs']}: {', '.join(f for f in found if f)}")
    else:
        check = f", onnxruntime max |logit diff| {result['max_abs_diff']:.2e}" if "max_abs_diff" in result else ""
        print(f"wrote {result['onnx']} ({result['bytes'] / 1e6:.1f} MB, opset {result['opset']}{check})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from auxprune.predict import predict_texts

    result = predict_texts(args.model_dir, [args.text], None if args.pair is None else [args.pair])[0]
    if args.json:
        print(json.dumps(result))
    else:
        shown = f"{result['value']:.4f}" if "value" in result else f"{result['label']}\t{result['score']:.4f}"
        print(shown + (f"\tcosine {result['cosine']:.4f}" if "cosine" in result else ""))
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from auxprune.embed import embed, read_texts, write_embeddings

    texts = read_texts(Path(args.input), args.field)
    if Path(args.output).suffix not in (".npy", ".jsonl"):
        raise UserError(f"--output {args.output}: unknown type; expected .npy or .jsonl")
    vectors = embed(args.model_dir, texts, batch_size=args.batch_size, normalize=not args.no_normalize)
    with flag_of("--output", args.output):
        write_embeddings(Path(args.output), texts, vectors)
    print(f"wrote {len(texts)} embeddings of {vectors.shape[1]} dimensions to {args.output}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from auxprune.speed import bench

    rows = bench(args.model_dir, args.baseline, batch_size=args.batch_size, seq_len=args.seq_len, runtime=args.runtime,
                 threads=args.threads, warmup=args.warmup, iterations=args.iterations, min_time=args.min_time)
    payload = rows if args.runtime == "all" else rows[0]
    if args.output:
        from auxprune.output import atomic_write_text

        out = Path(args.output)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, json.dumps(payload, indent=2) + "\n")
        except OSError as err:
            raise UserError(f"--output {out}: cannot write ({err.strerror})") from err
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    for row in rows:
        p, b = row["pruned"], row["baseline"]
        print(f"{row['runtime']}: batch {row['batch_size']} x {row['seq_len']} tokens, {row['threads']} thread(s)")
        print(f"  pruned   p50 {p['latency_ms_p50']:9.2f} ms  p90 {p['latency_ms_p90']:9.2f} ms  {p['throughput']:9.1f} ex/s")
        print(f"  baseline p50 {b['latency_ms_p50']:9.2f} ms  p90 {b['latency_ms_p90']:9.2f} ms  {b['throughput']:9.1f} ex/s"
              f"  ({row['baseline_source']})")
        print(f"  speed-up {row['speedup']:.2f}x measured, {row['flops_speedup']:.2f}x from FLOPs")
    by_runtime = {row["runtime"]: row for row in rows}
    if "torch" in by_runtime and len(rows) > 1:  # what deploying the pruned model gains over the dense one in torch
        dense = by_runtime["torch"]["baseline"]["latency_ms_p50"]
        print("  pruned vs dense torch: " + ", ".join(f"{r} {dense / row['pruned']['latency_ms_p50']:.2f}x"
                                                     for r, row in by_runtime.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    commands = {"prune": lambda a: cmd_prune(a, argv), "eval": cmd_eval, "inspect": cmd_inspect, "export": cmd_export,
                "predict": cmd_predict, "bench": cmd_bench, "embed": cmd_embed}
    try:
        return commands[args.command](args)
    except UserError as err:
        if args.debug:
            traceback.print_exc()
        if _is_main():  # in a run of several processes, the main one says it once
            print(f"auxprune: error: {cli_wording(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if _is_main():
            print("auxprune: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, exit 1
        if args.debug:
            traceback.print_exc()
        print(f"auxprune: internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


if __name__ == "__main__":
    sys.exit(main())
