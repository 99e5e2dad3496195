"""Export a saved model to ONNX and check the exported graph against PyTorch with onnxruntime.

The graph takes `input_ids`, `attention_mask` and `token_type_ids` (int64, batch x sequence, both
axes dynamic) and returns `logits` (batch x num_labels); a bi-encoder's graph (`model.head=bi`)
returns `sentence_embedding` instead (batch x width, the model's pooling, unit length), one text
per row. A model without segment embeddings (MPNet) still takes `token_type_ids`, unused, so that
every export has the same inputs. It is written with the TorchScript-based exporter
(`torch.onnx.export(..., dynamo=False)`, opset 17), which needs neither onnxscript nor a
Python-level trace of transformers internals: the model is an ordinary module of Linear layers,
LayerNorms and `scaled_dot_product_attention`. The file also carries the model's config and
tokenizer as metadata (see `auxprune.onnx_runtime`), so `auxprune eval` and `auxprune predict`
run it alone; `--int8` quantizes it (see `auxprune.quantize`).

    auxprune export runs/rte --onnx rte.onnx
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from auxprune.errors import UserError
from auxprune.model.inputs import MODEL_INPUTS, random_inputs, truncation_length

OUTPUT_NAME = "logits"
EMBEDDING_OUTPUT = "sentence_embedding"
OPSET = 17
TOLERANCE = 1e-4


class LogitsOnly(nn.Module):
    """The classification model as a function of the three tokenizer tensors, returning logits only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


class EmbeddingsOnly(nn.Module):
    """A bi-encoder as a function of the tokenizer tensors of single texts: unit-length sentence embeddings."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        pooled, _ = self.model.encoder.encode(input_ids, attention_mask, token_type_ids)
        return nn.functional.normalize(pooled, dim=-1)


def graph_of(model: nn.Module) -> tuple[nn.Module, str]:
    """What the ONNX graph computes and its output's name: a bi-encoder's embeddings, else logits."""
    if getattr(model.config, "head", "cross") == "bi":
        return EmbeddingsOnly(model), EMBEDDING_OUTPUT
    return LogitsOnly(model), OUTPUT_NAME


def example_inputs(config, batch: int, seq_len: int, seed: int = 0, padded: bool = True) -> dict[str, Tensor]:
    """Random inputs for `config`'s model: a padded row and a second segment (when the model has segments)."""
    return random_inputs(batch, max(2, min(seq_len, config.max_positions)), config.vocab_size, seed,
                         pad_id=(config.pad_token_id or 0) if padded else None, two_segments=config.type_vocab_size > 1)


def to_onnx(model: nn.Module, path: str | Path, opset: int = OPSET, metadata: dict[str, str] | None = None) -> Path:
    """Write `model` (an `AuxpruneForSequenceClassification`) as an ONNX graph with dynamic batch and sequence axes.

    `metadata` goes into the file's `metadata_props` (see `auxprune.onnx_runtime`).
    """
    from auxprune.output import missing_folders, remove_empty_folders

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name such as model.onnx")
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        remove_empty_folders(created)
        raise UserError(f"{path}: cannot create the folder ({err.strerror})") from err
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    inputs = example_inputs(model.config, batch=2, seq_len=8)
    args = tuple(inputs[name].to(device) for name in MODEL_INPUTS)
    graph, output_name = graph_of(model)
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in MODEL_INPUTS}
    dynamic_axes[output_name] = {0: "batch"}
    # Written under a temporary name and renamed: a failed export (a full disk) leaves no partial
    # file, and an earlier export at `path` stays as it was.
    tmp = path.with_name(f".{path.name}.tmp")
    done = False
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated in favour of the dynamo one, but is the one
            # that exports this model without extra dependencies; silence its notice and tracer chatter.
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, str(tmp), dynamo=False, opset_version=opset,
                              input_names=list(MODEL_INPUTS), output_names=[output_name],
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
        keep_all_inputs(tmp)
        if metadata:
            from auxprune.onnx_runtime import write_metadata

            write_metadata(tmp, metadata)
        os.replace(tmp, path)
        done = True
    except OSError as err:
        raise UserError(f"{path}: cannot write the file ({err.strerror or err}); no file was written") from err
    finally:
        tmp.unlink(missing_ok=True)
        if not done:
            remove_empty_folders(created)
        model.train(was_training)
    return path


def keep_all_inputs(path: Path) -> None:
    """Declare the inputs the exporter dropped because the model ignores them (MPNet's token_type_ids)."""
    import onnx

    model = onnx.load(str(path))
    present = [i.name for i in model.graph.input]
    missing = [name for name in MODEL_INPUTS if name not in present]
    if not missing:
        return
    declared = {i.name: i for i in model.graph.input}
    for name in missing:
        declared[name] = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, ["batch", "sequence"])
    ordered = [declared[name] for name in MODEL_INPUTS] + [i for n, i in declared.items() if n not in MODEL_INPUTS]
    del model.graph.input[:]
    model.graph.input.extend(ordered)
    onnx.save(model, str(path))


def ort_session(path: str | Path, threads: int | None = None, spinning: bool = True):
    """An onnxruntime CPU session with all graph optimisations; `threads` sets intra-op threads.

    `spinning=False` makes idle worker threads sleep at once instead of busy-waiting: needed when
    two sessions take turns on the same cores (a benchmark), where one's spinning threads would
    steal the cores the other is computing on.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def run_onnx(session, inputs: dict[str, Tensor]) -> np.ndarray:
    """The graph's one output (logits, or a bi-encoder's sentence embeddings)."""
    feeds = {name: inputs[name].cpu().numpy().astype(np.int64) for name in MODEL_INPUTS}
    return session.run(None, feeds)[0]


def max_abs_diff(model: nn.Module, session, batches: list[dict[str, Tensor]]) -> float:
    """Largest |output difference| (logits, or embeddings) between the PyTorch model and the ONNX session."""
    model.eval()
    graph, _ = graph_of(model)
    device = next(model.parameters()).device
    worst = 0.0
    with torch.no_grad():
        for batch in batches:
            expected = graph(*(batch[k].to(device) for k in MODEL_INPUTS)).float().cpu().numpy()
            worst = max(worst, float(np.abs(run_onnx(session, batch) - expected).max()))
    return worst


def export_onnx(model_dir: str | Path, out: str | Path, *, verify: bool = True, tolerance: float = TOLERANCE,
                opset: int = OPSET) -> dict:
    """Export a run folder's (or model folder's) model to `out`; check it with onnxruntime unless `verify=False`.

    The check runs PyTorch and onnxruntime on random batches of shapes other than the one traced
    (a padded row and two segments included) and fails if logits differ by more than `tolerance`.
    """
    from auxprune.model.loading import load_saved, load_tokenizer, resolve_saved_dir
    from auxprune.onnx_runtime import export_metadata

    folder = resolve_saved_dir(model_dir)
    model = load_saved(folder)
    metadata = export_metadata(model, load_tokenizer(folder), folder)  # eval/predict run the file alone
    path = to_onnx(model, out, opset=opset, metadata=metadata)
    result = {"model": str(folder), "onnx": str(path), "opset": opset, "bytes": path.stat().st_size,
              "inputs": list(MODEL_INPUTS), "output": graph_of(model)[1]}
    if verify:
        config = model.config
        batches = [example_inputs(config, 1, 5, seed=1), example_inputs(config, 3, 19, seed=2),
                   example_inputs(config, 4, truncation_length(config), seed=3)]
        diff = max_abs_diff(model, ort_session(path, threads=1), batches)
        result["max_abs_diff"] = diff
        if not diff <= tolerance:
            raise RuntimeError(f"{path}: onnxruntime outputs differ from PyTorch by {diff:.3g} (> {tolerance:g})")
    return result
