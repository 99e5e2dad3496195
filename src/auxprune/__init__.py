"""auxprune: task-aware structured pruning with transfer from auxiliary tasks.

    model, tokenizer = auxprune.load("runs/rte")
"""

__version__ = "0.1.0"


def load(path):
    """(model, tokenizer) from a run folder or its `model/` folder."""
    from auxprune.evaluate import load as _load

    return _load(path)


__all__ = ["load", "__version__"]
