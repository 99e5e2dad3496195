"""Task data: named GLUE tasks, user files, sampling and metrics."""

from auxprune.data.metrics import METRICS, compute_metrics, constant_baseline
from auxprune.data.tasks import (
    DATA_DIR_ENV,
    NAMED_TASKS,
    Example,
    NamedTask,
    TaskData,
    TaskSpec,
    load_task,
    read_examples,
    resolve_data_dir,
    subsample,
)

__all__ = [
    "DATA_DIR_ENV",
    "METRICS",
    "NAMED_TASKS",
    "Example",
    "NamedTask",
    "TaskData",
    "TaskSpec",
    "compute_metrics",
    "constant_baseline",
    "load_task",
    "read_examples",
    "resolve_data_dir",
    "subsample",
]
