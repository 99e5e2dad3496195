"""auxprune: task-aware structured pruning with transfer from auxiliary tasks.

    model, tokenizer = auxprune.load("runs/rte")
    auxprune.predict("runs/rte", ["A man is playing.", "Nobody plays."])

Importing the package registers the model with the Hugging Face Auto classes (see `auxprune.hf`).
"""

__version__ = "0.1.0"

from auxprune import hf as _hf  # noqa: E402,F401 - registers AutoConfig / AutoModel / AutoModelForSequenceClassification


def load(path):
    """(model, tokenizer) from a run folder or its `model/` folder."""
    from auxprune.model.loading import load as _load

    return _load(path)


def predict(model, texts, pairs=None, batch_size=32):
    """Labels and scores (or regression values) for texts; see `auxprune.predict.predict`."""
    from auxprune.predict import predict as _predict

    return _predict(model, texts, pairs=pairs, batch_size=batch_size)


__all__ = ["load", "predict", "__version__"]
