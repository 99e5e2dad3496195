"""The `prune` job: teacher, pruning with distillation, surgery, fine-tuning, evaluation, outputs."""

from __future__ import annotations

import copy
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from auxprune.config import RunConfig, to_yaml
from auxprune.data.batching import encode, make_loader
from auxprune.data.metrics import constant_baseline
from auxprune.data.tasks import TaskData, load_task, subsample
from auxprune.model.loading import load_for_task
from auxprune.output import atomic_write_text, plot_structure, prepare_output_dir, save_model, structure_summary, write_json
from auxprune.sparsity import count_parameters, dense_encoder_params
from auxprune.structure import final_masks
from auxprune.surgery import cut
from auxprune.train import RunLog, dims_of, evaluate, fine_tune, latency_ms, prune


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(config: RunConfig) -> tuple[TaskData, dict[str, float]]:
    """The task with its training set limited as configured, and the constant predictor's dev score."""
    d = config.data
    data = load_task(d.task, d.data_dir, train_file=d.train_file, dev_file=d.dev_file, text_columns=d.text_columns,
                     label_column=d.label_column, label_map=d.label_map, kind=d.kind)
    full_train = data.train
    stratify = data.spec.kind == "classification"
    data.train = subsample(data.train, d.max_train_examples, config.seed, stratify)
    data.dev = subsample(data.dev, d.max_dev_examples, 0, stratify)
    return data, constant_baseline(data.spec, full_train, data.dev)


@dataclass
class Timer:
    seconds: dict[str, float]

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 2)


def run_prune(config: RunConfig, output: Path, overwrite: bool = False) -> dict:
    """Run the whole job and write its outputs under `output`; returns the report."""
    prepare_output_dir(output, overwrite)
    atomic_write_text(output / "config.yaml", to_yaml(config))
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    seed_everything(config.seed)
    timer = Timer({})
    log = RunLog(output / "log.jsonl")
    accelerator = Accelerator()
    started = time.perf_counter()
    try:
        with timer.phase("load"):
            data, constant = load_data(config)
            spec = data.spec
            teacher, tokenizer = load_for_task(config.teacher.path or config.model.name, num_labels=spec.num_labels,
                                               pooling=config.model.pooling, task=spec.name, labels=spec.labels,
                                               max_seq_len=config.model.max_seq_len)
            teacher.to(accelerator.device)
            tokenizer.model_max_length = config.model.max_seq_len  # saved with the models: truncation matches training
            pad = tokenizer.pad_token_id or 0
            train_items = encode(data.train, tokenizer, config.model.max_seq_len)
            train_loader = make_loader(train_items, config.train.batch_size, pad, shuffle=True, seed=config.seed)
            dev_loader = make_loader(encode(data.dev, tokenizer, config.model.max_seq_len), config.train.eval_batch_size, pad, shuffle=False)
            dev_labels = [e.label for e in data.dev]
        if config.teacher.path is None:
            with timer.phase("teacher"):
                fine_tune(teacher, train_loader, epochs=config.teacher.epochs, lr=config.teacher.lr, config=config,
                          accelerator=accelerator, log=log, phase="teacher")
                save_model(accelerator.unwrap_model(teacher), tokenizer, output / "teacher")
        teacher = accelerator.unwrap_model(teacher).eval()
        with timer.phase("eval"):
            teacher_metrics = evaluate(teacher, dev_loader, dev_labels, spec, accelerator, "eval teacher")
        student = copy.deepcopy(teacher).train()  # the student starts as the fine-tuned teacher
        with timer.phase("prune"):
            result = prune(student, teacher if config.distill.enabled else None, train_loader, config=config,
                           accelerator=accelerator, log=log)
            masks = final_masks(accelerator.unwrap_model(result.gates), config.prune.target_sparsity, config.prune.tolerance)
            small = cut(accelerator.unwrap_model(student), masks)
        with timer.phase("finetune"):
            if config.finetune.epochs > 0:
                fine_tune(small, train_loader, epochs=config.finetune.epochs, lr=config.finetune.lr, config=config,
                          accelerator=accelerator, log=log, phase="finetune", teacher=teacher)
            small = accelerator.unwrap_model(small).eval()
        with timer.phase("eval"):
            pruned_metrics = evaluate(small, dev_loader, dev_labels, spec, accelerator, "eval pruned")
            speed = measure_speed(teacher, small, train_loader, accelerator)
        with timer.phase("save"):
            save_model(small, tokenizer, output / "model")
            plot_structure(small.config, output / "structure.png",
                           f"{spec.name}: sparsity {masks.sparsity():.3f} (target {config.prune.target_sparsity})")
        timer.seconds["total"] = round(time.perf_counter() - started, 2)
        report = build_report(config, spec, teacher, small, masks, result, teacher_metrics, pruned_metrics,
                              constant, speed, timer.seconds, len(data.train), len(data.dev))
        write_json(output / "report.json", report)
        return report
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        write_json(output / "report.json", {"status": status, "task": config.data.task, "error": f"{type(err).__name__}: {err}",
                                            "timing": timer.seconds, "config": config.model_dump(mode="json")})
        raise
    finally:
        log.close()


def measure_speed(dense, small, loader, accelerator: Accelerator) -> dict:
    """Forward latency of the dense teacher and the pruned model on one real training batch."""
    batch = next(iter(loader))
    inputs = {k: batch[k].to(accelerator.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
    dense_ms, small_ms = latency_ms(dense, inputs), latency_ms(small, inputs)
    return {"batch_size": int(inputs["input_ids"].shape[0]), "seq_len": int(inputs["input_ids"].shape[1]),
            "dense_latency_ms": round(dense_ms, 2), "pruned_latency_ms": round(small_ms, 2),
            "speedup": round(dense_ms / small_ms, 2), "device": str(accelerator.device)}


def build_report(config, spec, teacher, small, masks, result, teacher_metrics, pruned_metrics, constant, speed,
                 timing, n_train, n_dev) -> dict:
    counts = count_parameters(small)
    encoder_total = dense_encoder_params(dims_of(teacher))
    sparsity = 1.0 - counts["encoder_kept"] / encoder_total
    primary = spec.primary_metric
    return {
        "status": "ok",
        "task": spec.name,
        "target_sparsity": config.prune.target_sparsity,
        "sparsity": round(sparsity, 5),
        "expected_sparsity_at_end_of_pruning": round(result.expected_sparsity, 5),
        "params": {"encoder_total": encoder_total, "encoder_kept": counts["encoder_kept"],
                   "embeddings": counts["embeddings"], "total": counts["total"],
                   "dense_total": sum(p.numel() for p in teacher.parameters())},
        "structure": structure_summary(small.config),
        "metrics": {"teacher": teacher_metrics, "pruned": pruned_metrics, "constant_baseline": constant,
                    "primary": primary,
                    "retained": round(pruned_metrics[primary] / teacher_metrics[primary], 4) if teacher_metrics[primary] else None},
        "data": {"train_examples": n_train, "dev_examples": n_dev},
        "speed": speed,
        "distillation": {"layer_matches": result.layer_matches},
        "lagrangian": {"lambda1": result.lambdas[0], "lambda2": result.lambdas[1]},
        "timing": timing,
        "config": config.model_dump(mode="json"),
    }
