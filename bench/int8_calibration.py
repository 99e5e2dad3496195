"""Issue 21's open question: does static int8 (activation scales calibrated on training inputs) beat
the dynamic int8 that `auxprune export --int8` writes?

For each run folder: the fp32 ONNX export and four int8 versions of it, each with its full-dev-set
metric (`auxprune eval FILE.onnx`) and file size:
- `dynamic`: what `auxprune export --int8` writes (MatMul weights int8 per channel, embedding
  tables uint8, activation scales computed at run time);
- `static-matmul`: onnxruntime's `quantize_static`, QDQ, MatMul weights int8 per channel,
  activations int8 with MinMax scales from `--calibration` training examples (both sides of a
  pair for a bi-encoder, each padded to 128 tokens); embeddings stay fp32;
- `static-matmul-gather`: the same with the embedding tables int8 too (as small as dynamic);
- `static-percentile`: as the previous, scales at the 99.99th percentile instead of the extremes.
Latency is bench/deploy.py's job (an idle machine); this measures what each costs in accuracy.

    python bench/int8_calibration.py                     # the STS-B and MRPC bi-encoders at 0.9, seed 1
    python bench/int8_calibration.py --runs RUN ... --calibration 128
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from results_file import add_record, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "int8_calibration.json"
WORK = ROOT / "bench" / "work"
DEFAULT_RUNS = [WORK / "bi_encoder" / f"{task}_bi_s0.9_baseline_seed1" for task in ("stsb", "mrpc")]
VARIANTS = ("fp32", "dynamic", "static-matmul", "static-matmul-gather", "static-percentile")


def calibration_batches(model_dir: Path, examples: int, seed: int, data_dir: str | None) -> list[dict]:
    """Tokenized training inputs of the model's task, as the model reads them, padded to 128 tokens
    (the percentile calibrator needs batches of one shape)."""
    from auxprune.data.tasks import load_task
    from auxprune.model.inputs import MODEL_INPUTS
    from auxprune.model.loading import load_saved, load_tokenizer

    config = load_saved(model_dir).config
    tokenizer = load_tokenizer(model_dir)
    train = load_task(config.task, data_dir).train
    chosen = np.random.default_rng(seed).choice(len(train), min(examples, len(train)), replace=False)
    chosen = [train[i] for i in chosen]
    if config.head == "bi":  # each side on its own
        firsts, seconds = [t for e in chosen for t in (e.text_a, e.text_b) if t is not None], None
    else:
        firsts = [e.text_a for e in chosen]
        seconds = [e.text_b for e in chosen] if chosen[0].text_b is not None else None
    batches = []
    for start in range(0, len(firsts), 32):
        encoded = tokenizer(firsts[start:start + 32], seconds[start:start + 32] if seconds else None, truncation=True,
                            max_length=128, padding="max_length", return_token_type_ids=True, return_tensors="np")
        batches.append({k: encoded[k].astype(np.int64) for k in MODEL_INPUTS})
    return batches


def quantize_static_variant(fp32: Path, out: Path, variant: str, batches: list[dict]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    from auxprune.onnx_runtime import KEY_PRECISION, open_session, session_metadata, write_metadata

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    percentile = variant == "static-percentile"
    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    op_types_to_quantize=["MatMul"] if variant == "static-matmul" else ["MatMul", "Gather"],
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
                    extra_options={"CalibPercentile": 99.99} if percentile else {})
    write_metadata(out, {**session_metadata(open_session(fp32)), KEY_PRECISION: "int8"})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, default=DEFAULT_RUNS)
    parser.add_argument("--calibration", type=int, default=128, help="training examples to calibrate on")
    parser.add_argument("--seed", type=int, default=0, help="which training examples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", help="folder holding glue/ (default: $AUXPRUNE_DATA_DIR)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from auxprune.evaluate import evaluate_saved
    from auxprune.export import export_onnx
    from auxprune.quantize import _quiet_root_logger, export_int8

    torch.set_num_threads(args.threads)
    command = "python bench/int8_calibration.py" + (" " + shlex.join(argv) if argv else "")
    for run in args.runs:
        folder = WORK / "int8_calibration" / run.name
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / "fp32.onnx"
        export_onnx(run, fp32)
        batches = calibration_batches(run / "model", args.calibration, args.seed, args.data_dir)
        row = {"run": run.name, "calibration_examples": args.calibration, "calibration_seed": args.seed, "variants": {}}
        for variant in VARIANTS:
            path = folder / f"{variant}.onnx"
            with _quiet_root_logger():
                if variant == "dynamic":
                    export_int8(fp32, path, data_dir=args.data_dir)
                elif variant != "fp32":
                    quantize_static_variant(fp32, path, variant, batches)
            evaluation = evaluate_saved(path, data_dir=args.data_dir)
            row["variants"][variant] = {"metrics": evaluation["metrics"], "bytes": path.stat().st_size}
            primary = next(iter(evaluation["metrics"]))
            print(f"{run.name} {variant}: {primary} {100 * evaluation['metrics'][primary]:.2f}, "
                  f"{path.stat().st_size / 1e6:.1f} MB", flush=True)
        add_record(args.output, row, command, lambda r: (r["run"], r["calibration_examples"], r["calibration_seed"]), {
            "benchmark": "issue 21: dynamic against static (calibrated) int8, dev metric and file size",
            "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
