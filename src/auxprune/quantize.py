"""Int8 ONNX models: dynamic quantization with onnxruntime's tools, checked against fp32 on real inputs.

    auxprune export runs/stsb --onnx stsb.int8.onnx --int8          # from a run or model folder
    auxprune export stsb.onnx --onnx stsb.int8.onnx --int8          # from an fp32 auxprune export

What is quantized (`onnxruntime.quantization.quantize_dynamic`): the weights of every MatMul (the
Linear layers; int8, one scale per output channel, or per tensor with `--per-tensor`) and the
embedding tables (Gather; uint8, dequantized after the lookup). Activations are quantized at run
time, one scale per tensor and call, so no calibration data is needed. LayerNorm, softmax, GELU
and the two attention products stay fp32. The file keeps the auxprune metadata of the fp32
export (config, tokenizer; see `auxprune.onnx_runtime`), marked `int8`.

Per-channel weight scales are the default because the int8 model follows the fp32 one more
closely with them: on STS-B (MiniLM-L6, quick preset), the largest |output difference| on 256 dev
examples was 0.90 per channel and 1.76 per tensor for the dense teacher, 0.74 and 1.90 for the
model pruned to 0.9; dev Pearson x 100 went from 81.5 (fp32) to 81.0 and 79.7 for the teacher,
from 74.7 to 73.9 and 75.3 for the pruned model. 7-bit weights (onnxruntime's `reduce_range`,
meant for CPUs without VNNI) changed nothing per channel for the teacher (81.0) and cost 4.6
more points per tensor (75.1) on this AVX2 machine; not offered.

Static quantization (activation scales calibrated once on training inputs) is not offered: it
does not measure better where it matters (`python bench/int8_calibration.py`,
bench/results/int8_calibration.json; MiniLM-L6 bi-encoders pruned to 0.9, seed 1, calibrated on
128 training pairs, full dev sets, x100). STS-B Pearson: fp32 80.54, dynamic 80.52, static
(MatMul weights and activations int8, embeddings fp32) 80.80, static with int8 embeddings 80.76,
the same with 99.99th-percentile scales 79.28. MRPC accuracy: fp32 74.02, dynamic and all static
MinMax variants 74.51, percentile 73.28. Dynamic is within 0.5 of fp32 on both, static at most
0.3 better than dynamic, and static needs calibration data. (An earlier measurement on a
cross-encoder pruned to 0.9 favoured static by 1.9 points, 75.8 against 73.9, with fp32 at 74.7.)

The check compares the int8 model with its fp32 reference (the PyTorch model, or the fp32 ONNX
file) on the first `check_examples` dev examples of the model's task, tokenized as in training,
when the task's data is found (`--data-dir` or `$AUXPRUNE_DATA_DIR`); otherwise on random-token
batches, and the result says so. It reports the largest |logit difference| and, for
classification, how often the predicted labels agree (for regression, the Pearson correlation of
the two models' outputs); for a bi-encoder, whose graph gives sentence embeddings, the pairs' two
sides are encoded apart, its pair head (saved in the file) gives the logits, and the largest
|difference| of the unit-length embeddings is reported too. It does not fail: the dev metric (`auxprune eval OUT.onnx`) is the
measure of what int8 costs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from auxprune.errors import UserError

CHECK_EXAMPLES = 256
CHECK_BATCH = 32
QUANTIZED_OPS = ("MatMul", "Gather")


def require_quantization():
    """onnxruntime's `quantize_dynamic` and `QuantType`, or a `UserError` saying what to install."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        from auxprune.model.loading import one_line

        raise UserError(f"int8 quantization: this onnxruntime cannot quantize (import onnxruntime.quantization failed: "
                        f"{one_line(err)}); install onnxruntime and onnx (pip install onnxruntime onnx)") from err
    return quantize_dynamic, QuantType


@contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs advice (run pre-processing first) on the root logger; keep stderr clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx(src: str | Path, dst: str | Path, *, per_channel: bool = True) -> dict:
    """Write the dynamic-int8 version of the fp32 graph `src` to `dst`; returns the settings used."""
    quantize_dynamic, QuantType = require_quantization()
    with _quiet_root_logger():
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
                         weight_type=QuantType.QInt8)
    return {"method": "dynamic", "ops": list(QUANTIZED_OPS), "weights": "int8", "embeddings": "uint8",
            "activations": "uint8, per tensor, scaled at run time", "per_channel": per_channel}


# ------------------------------------------------------------------------------------------ check

def check_batches(config, tokenizer, data_dir: str | None, examples: int) -> tuple[list[dict], str]:
    """Tokenized dev examples of the model's task (real inputs), else random-token batches; and what they are."""
    from auxprune.data.tasks import load_task
    from auxprune.export import example_inputs
    from auxprune.model.inputs import MODEL_INPUTS, truncation_length

    try:
        if not config.task:
            raise UserError("the model records no task")
        dev = load_task(config.task, data_dir).dev[:examples]
    except UserError as err:
        batches = [example_inputs(config, 8, min(128, truncation_length(config)), seed=seed) for seed in range(4)]
        return batches, f"random tokens, 4 x 8 sequences (no real inputs: {err})"
    batches = []
    separate = getattr(config, "head", "cross") == "bi"
    for start in range(0, len(dev), CHECK_BATCH):
        part = dev[start:start + CHECK_BATCH]
        pairs = [e.text_b for e in part] if part[0].text_b is not None else None
        if separate and pairs is not None:  # every A side, then every B side: the batch a bi-encoder reads
            texts, pairs = [e.text_a for e in part] + pairs, None
        else:
            texts = [e.text_a for e in part]
        encoded = tokenizer(texts, pairs, truncation=True, max_length=truncation_length(config),
                            padding=True, return_token_type_ids=True, return_tensors="pt")
        batches.append({k: encoded[k] for k in MODEL_INPUTS})
    return batches, f"{config.task} dev, first {len(dev)} examples"


def unit_embeddings(model, batch: dict) -> torch.Tensor:
    """A bi-encoder's unit-length sentence embeddings of a batch (PyTorch model or ONNX module alike)."""
    pooled, _ = model.encoder.encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    return torch.nn.functional.normalize(pooled.float().cpu(), dim=-1)


@torch.inference_mode()
def compare(reference, candidate, batches: list[dict]) -> dict:
    """Largest and mean |logit difference| between two models, and agreement (classes) or correlation (regression).

    For bi-encoders also the largest |difference| of the unit-length embeddings; it is the whole
    comparison when the candidate gives embeddings only (an ONNX file of the `concat` classifier).
    """
    bi = getattr(reference, "is_bi_encoder", False)
    if bi and getattr(candidate, "classifier", True) is None:
        worst = max(float((unit_embeddings(reference, b) - unit_embeddings(candidate, b)).abs().max()) for b in batches)
        return {"examples": sum(len(b["input_ids"]) for b in batches) // 2, "max_abs_embedding_diff": worst}
    ref_out, got_out = [reference(**b) for b in batches], [candidate(**b) for b in batches]
    ref = np.concatenate([o.logits.float().cpu().numpy() for o in ref_out])
    got = np.concatenate([o.logits.float().cpu().numpy() for o in got_out])
    diff = np.abs(ref - got)
    result = {"examples": int(ref.shape[0]), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
    if bi:  # the outputs carry the embeddings: no second pass through either encoder
        def unit(output) -> torch.Tensor:
            return torch.nn.functional.normalize(output.embeddings.float().cpu(), dim=-1)
        result["max_abs_embedding_diff"] = max(float((unit(r) - unit(g)).abs().max()) for r, g in zip(ref_out, got_out))
    if ref.shape[1] == 1:
        result["pearson"] = float(np.corrcoef(ref[:, 0], got[:, 0])[0, 1]) if ref.shape[0] > 1 else 1.0
    else:
        result["agreement"] = float((ref.argmax(1) == got.argmax(1)).mean())
    return result


# ----------------------------------------------------------------------------------------- export

def export_int8(source: str | Path, out: str | Path, *, opset: int | None = None, per_channel: bool = True,
                verify: bool = True, data_dir: str | None = None,
                check_examples: int = CHECK_EXAMPLES) -> dict:
    """Export `source` (a run or model folder, or an fp32 auxprune `.onnx` file) as a dynamic-int8 ONNX file `out`.

    Every input is checked before anything is written; the file appears whole at `out` or not at all.
    """
    from auxprune.export import OPSET, to_onnx
    from auxprune.model.loading import load_saved, load_tokenizer, resolve_saved_dir
    from auxprune.onnx_runtime import (KEY_PRECISION, KEY_QUANTIZATION, auxprune_metadata, check_inputs,
                                       config_from_metadata, export_metadata, is_onnx_file, open_session,
                                       tokenizer_from_metadata, wrap_session, write_metadata)
    from auxprune.output import missing_folders, remove_empty_folders

    require_quantization()
    if check_examples < 1:
        raise UserError(f"check_examples={check_examples}: must be at least 1")
    source, out = Path(source), Path(out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; give a file name such as model.int8.onnx")
    model = None
    if is_onnx_file(source):
        if opset is not None:
            raise UserError(f"opset={opset}: {source} is already an ONNX graph; an opset applies to exports from a model folder")
        session = open_session(source, threads=1)
        metadata = auxprune_metadata(source, session)
        config = config_from_metadata(source, metadata)
        tokenizer = tokenizer_from_metadata(source, metadata)
        check_inputs(source, session, tokenizer, config)
        if metadata.get(KEY_PRECISION, "fp32") != "fp32":
            raise UserError(f"{source}: already quantized ({metadata[KEY_PRECISION]}); give the fp32 export or the model folder")
        if out.resolve() == source.resolve():
            raise UserError(f"{out}: is the source file itself; give a new file name")
        reference = wrap_session(session, config, source, metadata)
    else:
        folder = resolve_saved_dir(source)
        model = load_saved(folder)
        tokenizer, config = load_tokenizer(folder), model.config
        metadata = export_metadata(model, tokenizer, folder)
        reference = model
    batches, inputs = check_batches(config, tokenizer, data_dir, check_examples) if verify else ([], None)

    created = missing_folders(out.parent)
    done = False
    work = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))  # same file system: rename is atomic
        fp32_file = to_onnx(model, work / "fp32.onnx", opset=opset or OPSET) if model is not None else source
        int8_file = work / "int8.onnx"
        settings = quantize_onnx(fp32_file, int8_file, per_channel=per_channel)
        write_metadata(int8_file, {**metadata, KEY_PRECISION: "int8", KEY_QUANTIZATION: json.dumps(settings)})
        result = {"source": str(source), "onnx": str(out), "precision": "int8", "quantization": settings,
                  "bytes": int8_file.stat().st_size, "fp32_bytes": Path(fp32_file).stat().st_size}
        if verify:
            from auxprune.export import ort_session

            candidate = wrap_session(ort_session(int8_file, threads=1), config, out, metadata)
            result["check"] = {"inputs": inputs, "reference": "fp32 onnxruntime" if model is None else "fp32 PyTorch",
                               **compare(reference, candidate, batches)}
        os.replace(int8_file, out)
        done = True
    except OSError as err:
        raise UserError(f"{out}: cannot write the file ({err.strerror or err}); no file was written") from err
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if not done:
            remove_empty_folders(created)
    return result
