"""The `auxprune` command: prune, eval, inspect.

User mistakes print one line and exit 2; internal errors print one line and exit 1; `--debug`
shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from auxprune.errors import UserError


def _add_prune(sub) -> None:
    p = sub.add_parser("prune", help="prune a pre-trained encoder for a task into a smaller model")
    p.add_argument("--model", help="HF model folder (BERT/RoBERTa) or 'minilm' (default)")
    p.add_argument("--task", help="glue/rte, glue/mrpc, glue/stsb, glue/cola, glue/sst2, or a data file")
    p.add_argument("--data-dir", help="folder holding glue/ (default: $AUXPRUNE_DATA_DIR)")
    p.add_argument("--sparsity", type=float, help="target sparsity of the encoder layers, in [0, 1)")
    p.add_argument("--max-train-examples", type=int, help="limit the training set (stratified for classes)")
    p.add_argument("--seed", type=int)
    p.add_argument("--preset", default="quick", help="quick (CPU, minutes) or full (CoFi-like, GPU)")
    p.add_argument("--config", help="YAML file with config sections")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config field, e.g. prune.epochs=5")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="recompute a saved model's dev metrics")
    p.add_argument("model_dir")
    p.add_argument("--task", help="task to evaluate on (default: the task the model was pruned for)")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--json", action="store_true", help="print JSON only")


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="show a saved model's structure and parameter counts")
    p.add_argument("model_dir")
    p.add_argument("--json", action="store_true")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="auxprune", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    _add_prune(sub)
    _add_eval(sub)
    _add_inspect(sub)
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
    if args.seed is not None:
        flags["seed"] = args.seed
    # Explicit flags win over the config file; --set wins over everything.
    return build_config(args.preset, args.config, [flags] + [parse_assignment(s) for s in args.set])


def cmd_prune(args: argparse.Namespace) -> int:
    from auxprune.pipeline import run_prune
    from auxprune.summary import print_prune_summary

    config = prune_config(args)
    report = run_prune(config, Path(args.output), overwrite=args.overwrite)
    print_prune_summary(report, Path(args.output))
    return 0


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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"prune": cmd_prune, "eval": cmd_eval, "inspect": cmd_inspect}
    try:
        return commands[args.command](args)
    except UserError as err:
        if args.debug:
            traceback.print_exc()
        print(f"auxprune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("auxprune: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, exit 1
        if args.debug:
            traceback.print_exc()
        print(f"auxprune: internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
