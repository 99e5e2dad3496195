"""Load the named GLUE tasks and user-supplied labelled files into one in-memory form.

Every problem with the input (missing folder, malformed row, unknown label...) raises
`UserError` with a one-line message naming the file and, where it applies, the line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from auxprune.errors import UserError, where

DATA_DIR_ENV = "AUXPRUNE_DATA_DIR"
KINDS = ("classification", "regression")
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl")
DEV_FRACTION = 0.1
SPLIT_SEED = 0
# Integer labels with at most this many distinct values are read as classes, not scores.
MAX_INTEGER_CLASSES = 20
_BOM = "\ufeff"


@dataclass(frozen=True)
class Example:
    """One (sentence or sentence pair, label) item; `label` is a class index or a float score."""

    text_a: str
    text_b: str | None
    label: int | float


@dataclass(frozen=True)
class TaskSpec:
    """What a model needs to know about a task: output size, label names and how to score it."""

    name: str
    kind: Literal["classification", "regression"]
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    primary_metric: str

    @property
    def num_labels(self) -> int:
        """Width of the output head: one unit per class, or a single unit for regression."""
        return len(self.labels) if self.kind == "classification" else 1


@dataclass
class TaskData:
    """A task's spec with its training and evaluation examples."""

    spec: TaskSpec
    train: list[Example]
    dev: list[Example]
    train_available: int | None = None  # the training set's size before data.max_train_examples cut it


@dataclass(frozen=True)
class NamedTask:
    """Where and how a GLUE task is stored in the original GLUE TSV layout."""

    spec: TaskSpec
    directory: str  # folder under glue/, e.g. "RTE"
    columns: tuple[str, ...]  # the header, or the column names when the file has none
    has_header: bool
    text_columns: tuple[str, ...]
    label_column: str
    score_range: tuple[float, float] | None = None  # allowed regression scores, both ends included


def _glue_spec(name: str, labels: tuple[str, ...], metrics: tuple[str, ...]) -> TaskSpec:
    kind = "classification" if labels else "regression"
    return TaskSpec(name=name, kind=kind, labels=labels, metrics=metrics, primary_metric=metrics[0])


NAMED_TASKS: dict[str, NamedTask] = {
    "glue/rte": NamedTask(
        spec=_glue_spec("glue/rte", ("entailment", "not_entailment"), ("accuracy",)),
        directory="RTE",
        columns=("index", "sentence1", "sentence2", "label"),
        has_header=True,
        text_columns=("sentence1", "sentence2"),
        label_column="label",
    ),
    "glue/mrpc": NamedTask(
        spec=_glue_spec("glue/mrpc", ("0", "1"), ("accuracy", "f1")),
        directory="MRPC",
        columns=("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        has_header=True,
        text_columns=("#1 String", "#2 String"),
        label_column="Quality",
    ),
    "glue/stsb": NamedTask(
        spec=_glue_spec("glue/stsb", (), ("pearson", "spearman")),
        directory="STS-B",
        columns=("index", "genre", "filename", "year", "old_index", "source1", "source2",
                 "sentence1", "sentence2", "score"),
        has_header=True,
        text_columns=("sentence1", "sentence2"),
        label_column="score",
        score_range=(0.0, 5.0),
    ),
    "glue/cola": NamedTask(
        spec=_glue_spec("glue/cola", ("0", "1"), ("matthews", "accuracy")),
        directory="CoLA",
        columns=("source", "label", "original_label", "sentence"),
        has_header=False,
        text_columns=("sentence",),
        label_column="label",
    ),
    "glue/sst2": NamedTask(
        spec=_glue_spec("glue/sst2", ("0", "1"), ("accuracy",)),
        directory="SST-2",
        columns=("sentence", "label"),
        has_header=True,
        text_columns=("sentence",),
        label_column="label",
    ),
}


# --------------------------------------------------------------------------- public entry points


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """The data folder from the argument, else from $AUXPRUNE_DATA_DIR, else None."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "")
    return Path(from_env).expanduser() if from_env else None


def load_task(
    task: str | None,
    data_dir: str | Path | None = None,
    *,
    train_file: str | Path | None = None,
    dev_file: str | Path | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    label_map: Mapping[str, str | int] | None = None,
    kind: str | None = None,
) -> TaskData:
    """Load a named GLUE task (e.g. "glue/rte") or a task from the user's own files.

    `task` may be a GLUE name, a path to a labelled file, or just a display name when
    `train_file` is given. Without a dev file the dev set is a fixed 10% split of the training file.
    """
    named = None if train_file is not None or task is None else _named_task(task)
    if named is not None:
        _reject_file_options(task, dev_file=dev_file, text_columns=text_columns,
                             label_column=label_column, label_map=label_map, kind=kind)
        return _load_named(named, data_dir)
    if train_file is None:
        if task is None:
            raise UserError("no task given: name a GLUE task or pass a training file")
        train_file = _task_as_file(task)
        name = Path(train_file).stem
    else:
        name = task or Path(train_file).stem
    return _load_user_files(name, Path(train_file), None if dev_file is None else Path(dev_file),
                            text_columns=text_columns, label_column=label_column,
                            label_map=label_map, kind=kind)


def read_examples(
    path: str | Path,
    *,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    kind: str | None = None,
    label_map: Mapping[str, str | int] | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[list[Example], TaskSpec]:
    """Read a labelled .csv/.tsv/.txt/.jsonl file; returns its examples and a spec named after it.

    Defaults: text columns sentence1+sentence2, else sentence, else text; label column label,
    else score. `kind` None guesses: a "score" column or non-integer numbers mean regression,
    anything else (or a `label_map`/`labels`) means classification. `label_map` renames raw
    labels (e.g. neutral -> not_entailment); `labels` fixes the class order (e.g. a target task's
    labels) and rejects any other label; without it the classes are the file's own labels sorted,
    numbers in numeric order.
    """
    loaded = _read_file(Path(path), text_columns, label_column, kind, label_map, labels)
    return loaded.examples, loaded.spec


def subsample(examples: list[Example], n: int | None, seed: int, stratify: bool) -> list[Example]:
    """Pick `n` examples reproducibly, keeping file order; stratified by class when asked.

    Stratifying keeps each class's share within one example of its share in `examples`, so
    small training budgets stay comparable across seeds. Regression data is sampled uniformly.
    """
    if n is not None and n < 0:
        raise UserError(f"sample size must be 0 or more, got {n}")
    if n is None or n >= len(examples):
        return list(examples)
    return [examples[i] for i in _sample_indices(examples, n, seed, stratify)]


# --------------------------------------------------------------------------- named GLUE tasks


def _task_key(name: str) -> str:
    """Canonical registry key: "SST-2", "glue/sst_2" and "sst2" all give "glue/sst2"."""
    key = name.strip().lower().removeprefix("glue/")
    return "glue/" + key.replace("-", "").replace("_", "")


def _named_task(name: str) -> NamedTask | None:
    return NAMED_TASKS.get(_task_key(name))


def _task_as_file(task: str) -> Path:
    """Interpret a task string that is not a GLUE name as a file path, or say what is known."""
    path = Path(task).expanduser()
    if path.suffix.lower() in SUPPORTED_SUFFIXES or path.is_file():
        return path
    known = ", ".join(NAMED_TASKS)
    raise UserError(f"unknown task {task!r} (not a GLUE task name, and no such file); "
                    f"expected one of {known}, or a path to a {'/'.join(SUPPORTED_SUFFIXES)} file")


def _reject_file_options(task: str, **options: object) -> None:
    """Options that only make sense for user files must not be silently ignored."""
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise UserError(f"task {task!r} is a named GLUE task; {', '.join(given)} only apply "
                        "to user files (pass train_file/dev_file instead)")


def _glue_dir(data_dir: str | Path | None) -> Path:
    """The folder holding RTE/, MRPC/... given either it or its parent."""
    root = resolve_data_dir(data_dir)
    if root is None:
        raise UserError(f"no data directory: set data.data_dir or {DATA_DIR_ENV} "
                        "to the folder that contains glue/")
    if not root.is_dir():
        raise UserError(f"{root}: data directory not found; set data.data_dir or "
                        f"{DATA_DIR_ENV} to the folder that contains glue/")
    return root / "glue" if (root / "glue").is_dir() else root


def _load_named(named: NamedTask, data_dir: str | Path | None) -> TaskData:
    folder = _glue_dir(data_dir) / named.directory
    train, dev = (_read_named_split(named, folder / f"{split}.tsv") for split in ("train", "dev"))
    return TaskData(spec=named.spec, train=train, dev=dev)


def _read_named_split(named: NamedTask, path: Path) -> list[Example]:
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected the original GLUE layout "
                        f"<data-dir>/glue/{named.directory}/{path.name})")
    header = list(named.columns) if not named.has_header else None
    table = _read_table(path, header=header)
    if tuple(table.columns) != named.columns:
        raise UserError(f"{where(path, 1)}: unexpected header {_join(table.columns)}; "
                        f"expected {_join(named.columns)} (the GLUE {named.directory} format)")
    spec = named.spec
    examples, _, _ = _to_examples(table, named.text_columns, named.label_column, spec.kind,
                                  None, spec.labels,
                                  label_source=f"the GLUE {named.directory} labels",
                                  score_range=named.score_range,
                                  score_source=f"GLUE {named.directory} scores")
    return examples


# --------------------------------------------------------------------------- user files


@dataclass(frozen=True)
class _LoadedFile:
    """A read file plus the column choices made for it, so a dev file can reuse them."""

    examples: list[Example]
    spec: TaskSpec
    text_columns: tuple[str, ...]
    label_column: str


def _load_user_files(
    name: str,
    train_path: Path,
    dev_path: Path | None,
    *,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    label_map: Mapping[str, str | int] | None,
    kind: str | None,
) -> TaskData:
    train = _read_file(train_path, text_columns, label_column, kind, label_map, None)
    spec = _user_spec(name, train.spec.kind, train.spec.labels)
    if spec.kind == "classification" and len(spec.labels) < 2:
        raise UserError(f"{train_path}: only one class {spec.labels[0]!r} found; "
                        "classification needs at least two")
    if dev_path is not None:
        dev = _read_file(dev_path, train.text_columns, train.label_column, spec.kind,
                         label_map, spec.labels if spec.kind == "classification" else None)
        return TaskData(spec=spec, train=train.examples, dev=dev.examples)
    if len(train.examples) < 2:
        raise UserError(f"{train_path}: needs at least 2 rows to split off a dev set "
                        "(or pass a dev file)")
    train_part, dev_part = _split_dev(train.examples, spec.kind == "classification")
    return TaskData(spec=spec, train=train_part, dev=dev_part)


def _split_dev(examples: list[Example], stratify: bool) -> tuple[list[Example], list[Example]]:
    """Hold out a reproducible 10% (stratified for classes) when the user gave no dev file."""
    n_dev = max(1, round(len(examples) * DEV_FRACTION))
    chosen = set(_sample_indices(examples, n_dev, SPLIT_SEED, stratify))
    train = [ex for i, ex in enumerate(examples) if i not in chosen]
    dev = [ex for i, ex in enumerate(examples) if i in chosen]
    return train, dev


def _user_spec(name: str, kind: str, labels: tuple[str, ...]) -> TaskSpec:
    """Metrics for a user task: accuracy (+ F1 of class 1 when binary), or correlations."""
    if kind == "regression":
        return TaskSpec(name, "regression", (), ("pearson", "spearman"), "pearson")
    metrics = ("accuracy", "f1") if len(labels) == 2 else ("accuracy",)
    return TaskSpec(name, "classification", labels, metrics, "accuracy")


def _read_file(
    path: Path,
    text_columns: Sequence[str] | None,
    label_column: str | None,
    kind: str | None,
    label_map: Mapping[str, str | int] | None,
    labels: Sequence[str] | None,
) -> _LoadedFile:
    if kind is not None and kind not in KINDS:
        raise UserError(f"{path}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if label_map is not None and kind == "regression":
        raise UserError(f"{path}: label_map only applies to classification, not regression")
    table = _read_table(path)
    texts = tuple(text_columns) if text_columns else _default_text_columns(table)
    label = label_column or _default_label_column(table)
    if kind is None and labels is None and label_map is None and label == "score":
        kind = "regression"
    examples, kind, classes = _to_examples(table, texts, label, kind, label_map,
                                           None if labels is None else tuple(labels))
    return _LoadedFile(examples, _user_spec(path.stem, kind, classes), texts, label)


def _default_text_columns(table: _Table) -> tuple[str, ...]:
    columns = set(table.columns)
    for choice in (("sentence1", "sentence2"), ("sentence",), ("text",)):
        if columns.issuperset(choice):
            return choice
    raise UserError(f"{table.path}: no text column found (columns found: {_join(table.columns)}); "
                    "expected sentence1+sentence2, sentence or text, or set the text columns")


def _default_label_column(table: _Table) -> str:
    for choice in ("label", "score"):
        if choice in table.columns:
            return choice
    raise UserError(f"{table.path}: no label column found (columns found: "
                    f"{_join(table.columns)}); expected 'label' or 'score', or set the label column")


# --------------------------------------------------------------------------- reading rows


@dataclass
class _Table:
    """Rows of a file as {column: value}, each with its line number for error messages."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, object]]]
    header_line: int = 1  # the line the column names come from (a JSONL file's first object)


def _read_table(path: Path, header: list[str] | None = None) -> _Table:
    """Parse by extension; `header` gives column names for a TSV that has no header row."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UserError(f"{path}: unsupported file type {suffix or path.name!r}; "
                        f"use one of {', '.join(SUPPORTED_SUFFIXES)}")
    text = _read_text(path)
    if suffix == ".jsonl":
        table = _jsonl_table(path, text)
    else:
        table = _delimited_table(path, text, suffix, header)
    if not table.rows:
        if not text.strip():
            expected = ("one JSON object per line" if suffix == ".jsonl"
                        else "a header line and data rows")
            raise UserError(f"{path}: the file is empty (no data rows); expected {expected}")
        raise UserError(f"{where(path, 1)}: only a header line, no data rows; "
                        "expected at least one labelled row after the header")
    return table


def _read_text(path: Path) -> str:
    """Decode as UTF-8 (reporting the line of a bad byte) and drop a leading BOM."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; expected a data file "
                        f"({', '.join(SUPPORTED_SUFFIXES)})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{where(path, line)}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                        "expected UTF-8 text (save the file as UTF-8)") from None
    return text.removeprefix(_BOM)


def _split_records(path: Path, text: str, suffix: str) -> list[tuple[int, list[str]]]:
    """(line, fields) per non-empty record: csv quoting for .csv, plain tabs otherwise."""
    if suffix != ".csv":
        lines = text.split("\n")
        return [(n, line.removesuffix("\r").split("\t"))
                for n, line in enumerate(lines, 1) if line.removesuffix("\r")]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    try:
        start = 1  # a quoted field may span lines: report the line the record starts on
        for fields in reader:
            if fields:
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise UserError(f"{where(path, reader.line_num)}: malformed CSV ({exc})") from None
    return records


def _delimited_table(path: Path, text: str, suffix: str, header: list[str] | None) -> _Table:
    records = _split_records(path, text, suffix)
    if header is None:
        if not records:
            return _Table(path, [], [])
        _, first = records.pop(0)
        header = _check_header(path, [name.strip() for name in first], suffix)
    rows = []
    for line, fields in records:
        if len(fields) != len(header):
            raise UserError(f"{where(path, line)}: expected {len(header)} columns "
                            f"({_join(header)}), got {len(fields)}")
        rows.append((line, dict(zip(header, fields))))
    return _Table(path, header, rows)


# (delimiter, its name, what to do about a file that uses it), tried in this order.
_OTHER_DELIMITERS = (
    ("\t", "tabs", "rename it to .tsv"),
    (",", "commas", "rename it to .csv"),
    (";", "semicolons", "save it with tabs as .tsv, or with commas as .csv"),
    ("|", "pipes", "save it with tabs as .tsv, or with commas as .csv"),
)


def _check_header(path: Path, names: list[str], suffix: str) -> list[str]:
    """Catch the usual wrong-delimiter mistake and ambiguous headers up front."""
    if len(names) == 1:
        expected = "comma" if suffix == ".csv" else "tab"
        for other, found, advice in _OTHER_DELIMITERS:
            if other in names[0] and found[:-1] != expected:
                raise UserError(f"{where(path, 1)}: header has no {expected} but has {found}, so "
                                f"the file looks {found[:-1]}-separated; expected "
                                f"{expected}-separated columns in a {suffix} file ({advice})")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"{where(path, 1)}: duplicate column name(s) {_join(duplicates)}")
    return names


def _jsonl_table(path: Path, text: str) -> _Table:
    rows: list[tuple[int, dict[str, object]]] = []
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where(path, line_no)}: invalid JSON ({exc.msg} at column "
                            f"{exc.colno}); expected one JSON object per line") from None
        if not isinstance(record, dict):
            raise UserError(f"{where(path, line_no)}: expected a JSON object per line, "
                            f"got {type(record).__name__}")
        rows.append((line_no, record))
    columns = list(rows[0][1]) if rows else []
    return _Table(path, columns, rows, rows[0][0] if rows else 1)


def _cell(table: _Table, line: int, record: Mapping[str, object], column: str) -> str:
    """A non-empty cell as text; JSON numbers become their decimal text."""
    if column not in record:
        raise UserError(f"{where(table.path, line)}: missing field {column!r} "
                        f"(found {_join(record)}); expected the fields {_join(table.columns)}")
    value = record[column]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise UserError(f"{where(table.path, line)}: column {column!r} must be text or a number, "
                        f"got {json.dumps(value)}")
    if not value.strip():
        raise UserError(f"{where(table.path, line)}: column {column!r} is empty")
    return value


# --------------------------------------------------------------------------- labels


def _to_examples(
    table: _Table,
    text_columns: tuple[str, ...],
    label_column: str,
    kind: str | None,
    label_map: Mapping[str, str | int] | None,
    labels: tuple[str, ...] | None,
    *,
    label_source: str = "the training labels",
    score_range: tuple[float, float] | None = None,
    score_source: str = "",
) -> tuple[list[Example], str, tuple[str, ...]]:
    """Turn table rows into Examples; decides the kind and class order when not given.

    `labels` fixes the classes (any other label is an error naming `label_source`); `score_range`
    bounds regression scores (an error naming `score_source`).
    """
    if not 1 <= len(text_columns) <= 2:
        raise UserError(f"{table.path}: expected 1 or 2 text columns, got {len(text_columns)}")
    for role, column in [("text", c) for c in text_columns] + [("label", label_column)]:
        if column not in table.columns:
            raise UserError(f"{where(table.path, table.header_line)}: no {role} column {column!r}; "
                            f"expected one of the columns found: {_join(table.columns)}")
    rows = []
    for line, record in table.rows:
        texts = [_cell(table, line, record, column) for column in text_columns]
        rows.append((line, texts, _cell(table, line, record, label_column).strip()))
    if kind is None:
        fixed_classes = label_map is not None or labels is not None
        kind = "classification" if fixed_classes else _guess_kind(raw for _, _, raw in rows)
    if kind == "regression":
        targets: list[int | float] = [_score(table.path, line, raw, score_range, score_source)
                                      for line, _, raw in rows]
        classes: tuple[str, ...] = ()
    else:
        mapping = None if label_map is None else {str(k): str(v) for k, v in label_map.items()}
        names = [(line, _mapped(table.path, line, raw, mapping)) for line, _, raw in rows]
        classes = labels if labels is not None else _sorted_labels({n for _, n in names})
        _check_known_labels(table.path, names, classes, label_source)
        targets = [classes.index(name) for _, name in names]
    examples = [Example(texts[0], texts[1] if len(texts) > 1 else None, target)
                for (_, texts, _), target in zip(rows, targets)]
    return examples, kind, classes


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _guess_kind(raw_labels: Iterable[str]) -> str:
    """Scores if all labels are numbers, unless they look like a few integer class ids."""
    values = [_as_float(raw) for raw in raw_labels]
    numbers = [value for value in values if value is not None]
    if len(numbers) < len(values):
        return "classification"
    few_integers = len(set(numbers)) <= MAX_INTEGER_CLASSES and all(
        value.is_integer() for value in numbers)
    return "classification" if few_integers else "regression"


def _score(path: Path, line: int, raw: str, bounds: tuple[float, float] | None = None,
           source: str = "") -> float:
    value = _as_float(raw)
    if value is None:
        raise UserError(f"{where(path, line)}: label {raw!r} is not a number; expected a numeric "
                        "score (regression task)")
    if not math.isfinite(value):
        raise UserError(f"{where(path, line)}: label {raw!r} is not a finite number; expected a "
                        "finite score (NaN and infinity are not allowed in regression labels)")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise UserError(f"{where(path, line)}: score {raw} is out of range; expected a value in "
                        f"[{bounds[0]:g}, {bounds[1]:g}]{f' ({source})' if source else ''}")
    return value


def _mapped(path: Path, line: int, raw: str, mapping: dict[str, str] | None) -> str:
    if mapping is None:
        return raw
    if raw not in mapping:
        raise UserError(f"{where(path, line)}: label {raw!r} is not in label_map; "
                        f"expected one of its keys {_join(mapping)}")
    return mapping[raw]


def _check_known_labels(path: Path, names: list[tuple[int, str]], classes: tuple[str, ...],
                        source: str) -> None:
    """Reject the first label outside `classes`, listing every such label when there are several."""
    known = set(classes)
    unknown = [(line, name) for line, name in names if name not in known]
    if not unknown:
        return
    line, name = unknown[0]
    others = sorted({n for _, n in unknown})
    also = f" (labels here but not in {source}: {_join(others)})" if len(others) > 1 else ""
    raise UserError(f"{where(path, line)}: unknown label {name!r}{also}; expected one of "
                    f"{_join(classes)} ({source})")


def _sorted_labels(names: set[str]) -> tuple[str, ...]:
    """Numbers first in numeric order ("2" before "10"), then text labels alphabetically."""

    def key(name: str) -> tuple[int, float, str]:
        value = _as_float(name)
        return (0, value, name) if value is not None and math.isfinite(value) else (1, 0.0, name)

    return tuple(sorted(names, key=key))


def _join(names: Iterable[object]) -> str:
    return ", ".join(repr(str(name)) for name in names)


# --------------------------------------------------------------------------- sampling


def _sample_indices(examples: list[Example], n: int, seed: int, stratify: bool) -> list[int]:
    """Sorted indices of `n` examples; per-class quotas by largest remainder when stratifying."""
    rng = random.Random(seed)
    if not (stratify and all(isinstance(ex.label, int) for ex in examples)):
        return sorted(rng.sample(range(len(examples)), n))
    groups: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(int(ex.label), []).append(i)
    quotas = _largest_remainder(n, {label: len(members) for label, members in groups.items()})
    chosen = [i for label in sorted(groups) for i in rng.sample(groups[label], quotas[label])]
    return sorted(chosen)


def _largest_remainder(n: int, counts: dict[int, int]) -> dict[int, int]:
    """Split `n` proportionally to `counts` in whole numbers that add up to exactly `n`."""
    total = sum(counts.values())
    quotas = {label: n * count // total for label, count in counts.items()}
    remainders = sorted(counts, key=lambda label: (-(n * counts[label] % total), label))
    for label in remainders[: n - sum(quotas.values())]:
        quotas[label] += 1
    return quotas
