"""auxprune: task-aware structured pruning with transfer from auxiliary tasks.

    report = auxprune.prune("runs/rte", task="glue/rte", sparsity=0.6)   # the whole job, as `auxprune prune`
    model, tokenizer = auxprune.load("runs/rte")
    auxprune.predict("runs/rte", ["A man is playing.", "Nobody plays."])

Importing the package registers the model with the Hugging Face Auto classes (see `auxprune.hf`).
"""

__version__ = "0.1.0"

from auxprune import hf as _hf  # noqa: E402,F401 - registers AutoConfig / AutoModel / AutoModelForSequenceClassification


def prune(output, *, task: str | None = None, sparsity: float | None = None, target_params: int | None = None,
          size_of: str | None = None, speed_reference: str | None = None, model: str | None = None,
          preset: str = "quick", config=None,
          settings: dict | None = None, overwrite: bool = False, resume: bool = False, pruner=None) -> dict:
    """Run a prune job into the folder `output`, as `auxprune prune` does; returns its report.

    `config` is a YAML file of config sections, `settings` a nested dict of config fields (e.g.
    `{"prune": {"epochs": 3}, "data": {"data_dir": "data"}}`), applied last. `pruner` makes the
    pruning method, `pruner(dims, prune_section, steps)` (see `auxprune.pruners`); by default
    hard-concrete gates with the Lagrangian controller. One of `sparsity`, `target_params` (encoder-layer
    parameters) and `size_of` (a model whose encoder size to match) says how small; `speed_reference` names a
    model to time the pruned one beside (default: `size_of`'s), and to score as it is where it is a sentence
    encoder and the task has pairs (`report["reference_score"]`). With `resume`, `output` is an interrupted run and
    its saved config is used.
    """
    from pathlib import Path

    from auxprune.config import build_config, read_yaml, validate
    from auxprune.pipeline import run_prune

    output = Path(output)
    if resume:
        run_config = validate(read_yaml(output / "config.yaml"))
    else:
        flags: dict = {}
        if model is not None:
            flags.setdefault("model", {})["name"] = model
        if task is not None:
            flags.setdefault("data", {})["task"] = task
        for name, value in (("target_sparsity", sparsity), ("target_params", target_params), ("size_of", size_of),
                            ("speed_reference", speed_reference)):
            if value is not None:
                flags.setdefault("prune", {})[name] = value
        run_config = build_config(preset, config, [flags, settings or {}])
    return run_prune(run_config, output, overwrite=overwrite, resume=resume, pruner=pruner)


def load(path):
    """(model, tokenizer) from a run folder or its `model/` folder."""
    from auxprune.model.loading import load as _load

    return _load(path)


def predict(model, texts, pairs=None, batch_size=32):
    """Labels and scores (or regression values) for texts; see `auxprune.predict.predict_texts`."""
    from auxprune.predict import predict_texts

    return predict_texts(model, texts, pairs=pairs, batch_size=batch_size)


__all__ = ["prune", "load", "predict", "__version__"]
