"""Inference speed of a pruned model against its dense baseline, measured and expected from FLOPs.

Both models run in the same process, on the same random-token batch (batch x seq_len, no
padding), after a warm-up, in alternating order (pruned then dense, dense then pruned, ...) so
that slow drifts of the machine hit both alike. Runtimes: PyTorch (eager, `inference_mode`),
onnxruntime (both models exported to a temporary folder, all graph optimisations, idle threads
sleeping rather than spinning so the two sessions do not compete for the cores) and
onnxruntime-int8 (the same exports quantized as `auxprune export --int8` does). Everything
runs on the CPU with `threads` intra-op threads (`Bench` sets `torch.set_num_threads` for the
whole process). A bi-encoder is timed as it is used: embedding batch x seq_len texts (its ONNX
graph's output, the same computation in PyTorch).

    auxprune bench runs/rte --batch-size 8 --seq-len 128 --runtime all --threads 2 --json

The baseline is `--baseline`, else the dense teacher the run saved (`RUN/teacher`), else the
teacher folder named in the run's report (`teacher.path`), else a dense model rebuilt from the
config's `original_*` sizes with random weights (same shapes as the teacher, so the same speed).
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from auxprune.errors import UserError
from auxprune.model.inputs import random_inputs

RUNTIMES = ("torch", "onnxruntime", "onnxruntime-int8")


# ----------------------------------------------------------------------------------------- FLOPs

def forward_flops(config, seq_len: int) -> int:
    """Multiply-add FLOPs (2 per multiply-accumulate) of one forward pass over one sequence of `seq_len` tokens.

    Per token and layer: attention projections Q, K, V, output 2*4*heads*head_dim*hidden; attention
    scores and context 2*2*heads*head_dim*seq_len; FFN 2*2*units*hidden. A removed block costs
    nothing. Plus, once per sequence, the task head: the pooler (2*hidden*pooler_size, `pooler`
    pooling only) and the classifier (2*pooled_size*num_labels). Embedding look-ups, LayerNorms,
    softmax, biases and activations are left out (they are small against the matrix products).
    Each module's `flops` (`model/encoder.py`) holds its term; this is their sum.
    """
    from auxprune.model.encoder import AuxpruneForSequenceClassification

    return AuxpruneForSequenceClassification.flops(config, seq_len)


# ------------------------------------------------------------------------------------- baselines

def dense_config(config):
    """The config of the dense model `config` was pruned from (its `original_*` sizes)."""
    from auxprune.model.configuration import AuxpruneConfig
    from auxprune.structure import Dims

    dense = Dims.of(config)
    return AuxpruneConfig.from_dict({**config.to_dict(), "hidden_size": dense.hidden_size,
                                     "layer_heads": [dense.num_heads] * dense.num_layers,
                                     "layer_ffn": [dense.ffn_size] * dense.num_layers,
                                     "layer_head_ids": None, "pooler_size": config.pooler_size})


def size_reference(name_or_path: str | Path, like):
    """The model `name_or_path` (what `prune.size_of` names) with random weights, which latency does not depend on,
    and the head of `like` (the pruned model): the model a user would deploy instead. Having its encoder size does
    not make a model as fast: a 768-wide encoder with few heads and a 384-wide one with many differ."""
    from auxprune.model.encoder import AuxpruneForSequenceClassification
    from auxprune.model.loading import model_config

    _, config = model_config(name_or_path)
    for field in ("head", "pair_classifier", "label_range", "pooling", "task"):
        setattr(config, field, getattr(like.config, field))
    config.num_labels = like.config.num_labels
    with torch.random.fork_rng():  # the run's random stream stays as it was
        return AuxpruneForSequenceClassification(config).eval()


def fitted_inputs(inputs: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """Another model's batch made valid for `config`: token ids clipped to its vocabulary, token types to its
    segments, rows cut to its positions. The same shape is what matters for timing, not the tokens."""
    length = min(inputs["input_ids"].shape[1], config.max_positions)
    fitted = {name: tensor[:, :length] for name, tensor in inputs.items()}
    fitted["input_ids"] = fitted["input_ids"].clamp(max=config.vocab_size - 1)
    if "token_type_ids" in fitted:
        fitted["token_type_ids"] = fitted["token_type_ids"].clamp(max=max(config.type_vocab_size - 1, 0))
    return fitted


def default_baseline(run_dir: str | Path) -> Path | None:
    """The dense teacher of a run folder: `RUN/teacher`, else the report's `teacher.path` if it exists."""
    run = Path(run_dir)
    if run.name == "model" and not (run / "model").is_dir():
        run = run.parent  # the model/ folder of a run was given
    if (run / "teacher" / "config.json").is_file():
        return run / "teacher"
    report = run / "report.json"
    if report.is_file():
        try:
            path = json.loads(report.read_text(encoding="utf-8")).get("config", {}).get("teacher", {}).get("path")
        except (OSError, ValueError, AttributeError):
            path = None
        if path and (Path(path) / "config.json").is_file():
            return Path(path)
    return None


def _load_baseline(path: Path, num_labels: int):
    """A saved auxprune model, or a Hugging Face BERT/RoBERTa folder converted on the fly."""
    from auxprune.model.loading import load_for_task, load_saved, read_json, resolve_saved_dir

    folder = resolve_saved_dir(path)
    if read_json(folder / "config.json").get("model_type") == "auxprune_bert":
        return load_saved(folder), folder
    model, _ = load_for_task(folder, num_labels=num_labels)
    return model.eval(), folder


# --------------------------------------------------------------------------------------- runners

def torch_runner(model, inputs):
    """A no-argument call of one forward pass, for `time_alternating`: what the model's ONNX graph computes
    (a cross-encoder's logits; a bi-encoder's sentence embeddings, one text per row)."""
    from auxprune.export import graph_of
    from auxprune.model.inputs import MODEL_INPUTS

    graph, _ = graph_of(model)
    args = tuple(inputs[name] for name in MODEL_INPUTS)

    def run():
        with torch.inference_mode():
            graph(*args)
    return run


def _ort_runner(session, inputs):
    feeds = {k: v.numpy().astype(np.int64) for k, v in inputs.items()}

    def run():
        session.run(None, feeds)  # the graph's one output: logits, or a bi-encoder's embeddings
    return run


def time_alternating(first, second, warmup: int, iterations: int, min_time: float = 0.0) -> tuple[list[float], list[float]]:
    """Seconds per call of `first` and `second`, measured in alternating order after `warmup` calls of each.

    Runs at least `iterations` rounds, and more until `min_time` seconds of measurement have passed.
    """
    for _ in range(warmup):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    started = time.perf_counter()
    rounds = 0
    while rounds < iterations or (time.perf_counter() - started < min_time and rounds < 100 * max(iterations, 1)):
        pair = ((0, first), (1, second)) if rounds % 2 == 0 else ((1, second), (0, first))
        for slot, fn in pair:
            t0 = time.perf_counter()
            fn()
            times[slot].append(time.perf_counter() - t0)
        rounds += 1
    return times


def summarize(seconds: list[float], batch_size: int) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"latency_ms_p50": round(float(np.percentile(ms, 50)), 4),
            "latency_ms_p90": round(float(np.percentile(ms, 90)), 4),
            "latency_ms_mean": round(float(ms.mean()), 4),
            "throughput": round(batch_size / (float(ms.mean()) / 1000.0), 3),
            "iterations": len(seconds)}


# ----------------------------------------------------------------------------------------- bench

class Bench:
    """A pruned model and its dense baseline, loaded once; `run()` measures one runtime and shape.

    ONNX exports are made on first use, in a temporary folder removed by `close()`.
    """

    def __init__(self, model_dir: str | Path, baseline: str | Path | None = None, threads: int | None = None,
                 baseline_source: str = "--baseline"):
        from auxprune.model.loading import load_saved, resolve_saved_dir

        if threads is not None and threads < 1:
            raise UserError(f"threads={threads}: must be at least 1")
        self.threads = threads or torch.get_num_threads()
        torch.set_num_threads(self.threads)
        self.model_dir = resolve_saved_dir(model_dir)
        self.pruned = load_saved(self.model_dir).cpu().eval()
        if baseline is not None:
            try:
                self.baseline, self.baseline_dir = _load_baseline(Path(baseline), self.pruned.config.num_labels)
            except UserError as err:
                raise UserError(f"baseline={baseline}: {err}") from err
            self.baseline_source = baseline_source
        elif (found := default_baseline(model_dir)) is not None:
            self.baseline, self.baseline_dir = _load_baseline(found, self.pruned.config.num_labels)
            self.baseline_source = "run teacher"
        else:
            from auxprune.model.encoder import AuxpruneForSequenceClassification

            self.baseline = AuxpruneForSequenceClassification(dense_config(self.pruned.config)).eval()
            self.baseline_dir = None
            self.baseline_source = "dense structure from config original_* (random weights)"
        self.baseline.cpu().eval()
        self._tmp: Path | None = None
        self._sessions: dict[str, object] = {}

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self._sessions.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def max_seq_len(self) -> int:
        return min(m.config.max_positions for m in (self.pruned, self.baseline))

    def _session(self, which: str, int8: bool = False):
        key = f"{which}-int8" if int8 else which
        if key not in self._sessions:
            from auxprune.export import ort_session, to_onnx

            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="auxprune-bench-"))
            path = self._tmp / f"{which}.onnx"
            if not path.is_file():
                to_onnx(self.pruned if which == "pruned" else self.baseline, path)
            if int8:
                from auxprune.quantize import quantize_onnx

                path = self._tmp / f"{key}.onnx"
                quantize_onnx(self._tmp / f"{which}.onnx", path)
            self._sessions[key] = ort_session(path, threads=self.threads,
                                              spinning=False)  # two sessions alternate on the same cores
        return self._sessions[key]

    def run(self, runtime: str = "torch", batch_size: int = 8, seq_len: int = 128, warmup: int = 3,
            iterations: int = 20, min_time: float = 0.0, seed: int = 0) -> dict:
        if runtime not in RUNTIMES:
            raise UserError(f"runtime={runtime}: expected one of {', '.join(RUNTIMES)} or all")
        if batch_size < 1:
            raise UserError(f"batch_size={batch_size}: must be at least 1")
        if not 1 <= seq_len <= self.max_seq_len():
            raise UserError(f"seq_len={seq_len}: must be between 1 and {self.max_seq_len()} (the models' positions)")
        if iterations < 1 or warmup < 0:
            raise UserError(f"iterations={iterations} / warmup={warmup}: need at least 1 iteration and no negative warm-up")
        vocab = min(self.pruned.config.vocab_size, self.baseline.config.vocab_size)
        inputs = random_inputs(batch_size, seq_len, vocab, seed)
        if runtime == "torch":
            pruned_fn, baseline_fn = torch_runner(self.pruned, inputs), torch_runner(self.baseline, inputs)
        else:
            int8 = runtime == "onnxruntime-int8"
            pruned_fn = _ort_runner(self._session("pruned", int8), inputs)
            baseline_fn = _ort_runner(self._session("baseline", int8), inputs)
        pruned_s, baseline_s = time_alternating(pruned_fn, baseline_fn, warmup, iterations, min_time)
        pruned, baseline = summarize(pruned_s, batch_size), summarize(baseline_s, batch_size)
        pruned_flops = forward_flops(self.pruned.config, seq_len)
        baseline_flops = forward_flops(self.baseline.config, seq_len)
        pruned["gflops_per_example"] = round(pruned_flops / 1e9, 6)
        baseline["gflops_per_example"] = round(baseline_flops / 1e9, 6)
        return {
            "model": str(self.model_dir),
            "baseline_model": str(self.baseline_dir) if self.baseline_dir is not None else None,
            "baseline_source": self.baseline_source,
            "runtime": runtime, "batch_size": batch_size, "seq_len": seq_len, "threads": self.threads,
            "warmup": warmup,
            "pruned": pruned, "baseline": baseline,
            "speedup": round(baseline["latency_ms_p50"] / pruned["latency_ms_p50"], 4),
            "flops_speedup": round(baseline_flops / pruned_flops, 4),
            "versions": _versions(runtime), "machine": {"platform": platform.platform(), "processor": platform.machine()},
        }


def _versions(runtime: str) -> dict:
    versions = {"torch": torch.__version__}
    if runtime.startswith("onnxruntime"):
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


def bench(model_dir: str | Path, baseline: str | Path | None = None, *, batch_size: int = 8, seq_len: int = 128,
          runtime: str = "torch", threads: int | None = None, warmup: int = 3, iterations: int = 20,
          min_time: float = 0.0) -> list[dict]:
    """One result row per runtime (`runtime` is torch, onnxruntime or all)."""
    runtimes = RUNTIMES if runtime == "all" else (runtime,)
    if any(r not in RUNTIMES for r in runtimes):
        raise UserError(f"runtime={runtime}: expected one of {', '.join(RUNTIMES)} or all")
    with Bench(model_dir, baseline, threads) as b:
        return [b.run(r, batch_size, seq_len, warmup, iterations, min_time) for r in runtimes]
