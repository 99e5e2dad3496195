"""Task metrics, defined so that degenerate cases (constant predictions) score 0, not NaN.

A NaN would poison the averages and comparisons done over runs, and a constant predictor carries
no signal, so 0.0 is the meaningful value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from auxprune.data.tasks import Example, TaskSpec


def compute_metrics(
    spec: TaskSpec, predictions: Sequence[int | float], labels: Sequence[int | float]
) -> dict[str, float]:
    """Every metric named in `spec.metrics` (and only those) for the given predictions."""
    pred = np.asarray(predictions, dtype=float)
    gold = np.asarray(labels, dtype=float)
    if pred.shape != gold.shape or pred.ndim != 1:
        raise ValueError(f"predictions {pred.shape} and labels {gold.shape} must be equal 1-D")
    if pred.size == 0:
        raise ValueError("cannot compute metrics on zero examples")
    unknown = [name for name in spec.metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return {name: float(METRICS[name](pred, gold)) for name in spec.metrics}


def constant_baseline(spec: TaskSpec, train: list[Example], dev: list[Example]) -> dict[str, float]:
    """Dev metrics of always predicting the majority train class (or the train mean score).

    This is the floor a fine-tuned model has to beat to show it learned anything.
    """
    if spec.kind == "classification":
        counts = Counter(int(ex.label) for ex in train)
        constant: int | float = min(counts, key=lambda label: (-counts[label], label))
    else:
        constant = float(np.mean([float(ex.label) for ex in train]))
    return compute_metrics(spec, [constant] * len(dev), [ex.label for ex in dev])


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(pred == gold))


def f1(pred: np.ndarray, gold: np.ndarray) -> float:
    """Binary F1 of the positive class 1; 0.0 when class 1 is neither predicted nor present."""
    tp = np.sum((pred == 1) & (gold == 1))
    wrong = np.sum((pred == 1) != (gold == 1))
    return float(2 * tp / (2 * tp + wrong)) if tp + wrong else 0.0


def matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    """Matthews correlation (multi-class form, same as the binary one for two classes)."""
    classes, index = np.unique(np.concatenate([gold, pred]), return_inverse=True)
    n = gold.size
    confusion = np.zeros((classes.size, classes.size))
    np.add.at(confusion, (index[:n], index[n:]), 1)
    true_counts, pred_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    covariance = np.trace(confusion) * n - pred_counts @ true_counts
    denominator = np.sqrt((n * n - pred_counts @ pred_counts) * (n * n - true_counts @ true_counts))
    return float(covariance / denominator) if denominator > 0 else 0.0


def _correlation(function: Callable[..., object]) -> Callable[[np.ndarray, np.ndarray], float]:
    """Wrap a scipy correlation so a constant side (undefined correlation) gives 0.0."""

    def correlation(pred: np.ndarray, gold: np.ndarray) -> float:
        if pred.size < 2 or np.ptp(pred) == 0 or np.ptp(gold) == 0:
            return 0.0
        return float(function(pred, gold)[0])  # type: ignore[index]

    return correlation


pearson = _correlation(stats.pearsonr)
spearman = _correlation(stats.spearmanr)

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
}
