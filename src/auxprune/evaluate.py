"""Use a saved model: load it in one call, recompute its dev metrics, describe its structure."""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator

from auxprune.data.batching import encode, make_loader
from auxprune.data.tasks import load_task
from auxprune.errors import UserError
from auxprune.model.loading import load
from auxprune.output import structure_summary
from auxprune.sparsity import count_parameters, dense_encoder_params
from auxprune.structure import Dims
from auxprune.train import evaluate


def evaluate_saved(path: str | Path, task: str | None = None, data_dir: str | None = None, batch_size: int = 128) -> dict:
    model, tokenizer = load(path)
    if hasattr(model, "require_task_head"):  # an ONNX file
        model.require_task_head()
    task = task or model.config.task
    if not task:
        raise UserError(f"{path}: the model does not record its task; give the task")
    data = load_task(task, data_dir)
    if data.spec.num_labels != model.config.num_labels:
        raise UserError(f"task={task}: needs {data.spec.num_labels} outputs, the model has {model.config.num_labels}")
    accelerator = Accelerator()
    model.to(accelerator.device)
    separate = getattr(model.config, "head", "cross") == "bi"
    loader = make_loader(encode(data.dev, tokenizer, model.config.max_seq_len, separate), batch_size,
                         tokenizer.pad_token_id or 0, shuffle=False)
    metrics = evaluate(model, loader, [e.label for e in data.dev], data.spec, accelerator)
    result = {"model": str(path), "task": data.spec.name, "dev_examples": len(data.dev), "metrics": metrics}
    if hasattr(model, "precision"):  # an ONNX file
        result["runtime"], result["precision"] = "onnxruntime", model.precision
    return result


def inspect_saved(path: str | Path) -> dict:
    model, _ = load(path)
    c = model.config
    counts = count_parameters(model)
    dense = dense_encoder_params(Dims.of(c))
    return {"model": str(path), "task": c.task, "pooling": c.pooling, "head": c.head, "num_labels": c.num_labels,
            "structure": structure_summary(c), "params": {"encoder_total": dense, **counts},
            "sparsity": round(1 - counts["encoder_kept"] / dense, 5)}
