"""Tests for auxprune.data: GLUE and auxiliary loading, user-file errors, sampling, metrics."""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from pathlib import Path

import pytest

from auxprune.cli import cli_wording
from auxprune.data import (
    NAMED_TASKS,
    Example,
    TaskSpec,
    compute_metrics,
    constant_baseline,
    load_task,
    read_examples,
    resolve_data_dir,
    subsample,
)
from auxprune.errors import UserError


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; its absence is a broken checkout, so fail rather than skip."""
    from_env = os.environ.get("AUXPRUNE_DATA_DIR")
    path = Path(from_env) if from_env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "glue").is_dir() or not (path / "aux").is_dir():
        pytest.fail(f"shared data not found at {path} (expected glue/ and aux/ inside); "
                    "set AUXPRUNE_DATA_DIR to the folder that contains glue/")
    return path


@functools.cache
def _named(task: str, data_dir: Path):
    """Each GLUE task is read once per session: SST-2 alone has 67k rows."""
    return load_task(task, data_dir)


@functools.cache
def _aux(path: Path):
    return read_examples(path)


# --------------------------------------------------------------------------- named GLUE tasks

GLUE_COUNTS = {
    # task: (train rows, dev rows, train label counts, dev label counts) from PROVENANCE.md
    "glue/rte": (2490, 277, {"entailment": 1249, "not_entailment": 1241},
                 {"entailment": 146, "not_entailment": 131}),
    "glue/mrpc": (3668, 408, {"1": 2474, "0": 1194}, {"1": 279, "0": 129}),
    "glue/stsb": (5749, 1500, None, None),
    "glue/cola": (8551, 1043, {"1": 6023, "0": 2528}, {"1": 721, "0": 322}),
    "glue/sst2": (67349, 872, {"1": 37569, "0": 29780}, {"1": 444, "0": 428}),
}


def _label_counts(examples: list[Example], spec: TaskSpec) -> dict[str, int]:
    return dict(Counter(spec.labels[int(ex.label)] for ex in examples))


@pytest.mark.parametrize("task", sorted(GLUE_COUNTS))
def test_glue_row_counts_and_labels(task: str, data_dir: Path) -> None:
    n_train, n_dev, train_counts, dev_counts = GLUE_COUNTS[task]
    data = _named(task, data_dir)
    assert (len(data.train), len(data.dev)) == (n_train, n_dev)
    assert data.spec is NAMED_TASKS[task].spec
    if data.spec.kind == "regression":
        scores = [ex.label for ex in data.train + data.dev]
        assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
        assert data.spec.num_labels == 1
    else:
        assert _label_counts(data.train, data.spec) == train_counts
        assert _label_counts(data.dev, data.spec) == dev_counts
        assert data.spec.num_labels == 2
    assert all(ex.text_a.strip() for ex in data.train + data.dev)


def test_glue_specs() -> None:
    specs = {name: named.spec for name, named in NAMED_TASKS.items()}
    assert specs["glue/rte"].labels == ("entailment", "not_entailment")
    assert specs["glue/mrpc"].metrics == ("accuracy", "f1")
    assert (specs["glue/stsb"].kind, specs["glue/stsb"].primary_metric) == ("regression", "pearson")
    assert specs["glue/cola"].primary_metric == "matthews"
    assert specs["glue/sst2"].metrics == ("accuracy",)


def test_mrpc_bom_header_and_first_row(data_dir: Path) -> None:
    first = _named("glue/mrpc", data_dir).train[0]
    assert first.label == 1
    assert first.text_a.startswith("Amrozi accused his brother")
    assert first.text_b.startswith("Referring to him as only")


def test_cola_has_no_header_and_is_single_sentence(data_dir: Path) -> None:
    data = _named("glue/cola", data_dir)
    assert data.train[0] == Example(
        "Our friends won't buy this analysis, let alone the next one we propose.", None, 1)
    assert data.dev[-1].text_a.endswith("himself.")  # last line has no trailing newline
    assert all(ex.text_b is None for ex in data.dev)


def test_pair_and_single_sentence_tasks(data_dir: Path) -> None:
    assert _named("glue/stsb", data_dir).train[0] == Example(
        "A plane is taking off.", "An air plane is taking off.", 5.0)
    assert _named("glue/rte", data_dir).dev[0].text_a.startswith("Dana Reeve")
    assert _named("glue/sst2", data_dir).train[0].text_b is None


@pytest.mark.parametrize("alias, name", [
    ("RTE", "glue/rte"), ("glue/RTE", "glue/rte"), ("glue/sts-b", "glue/stsb"),
    ("STS-B", "glue/stsb"), ("CoLA", "glue/cola"),
])
def test_task_aliases(alias: str, name: str, data_dir: Path) -> None:
    data = load_task(alias, data_dir)
    assert data.spec.name == name
    assert len(data.dev) == GLUE_COUNTS[name][1]


@pytest.mark.parametrize("alias", ["glue/sst-2", "SST2", "sst_2"])
def test_sst2_aliases_on_a_tiny_layout(alias: str, tmp_path: Path) -> None:
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    for split in ("train", "dev"):
        (folder / f"{split}.tsv").write_text("sentence\tlabel\ngood \t1\nbad \t0\n")
    data = load_task(alias, tmp_path)
    assert data.spec.name == "glue/sst2"
    assert data.dev == [Example("good ", None, 1), Example("bad ", None, 0)]


def test_data_dir_may_be_the_glue_folder(data_dir: Path) -> None:
    data = load_task("glue/rte", data_dir / "glue")
    assert (len(data.train), len(data.dev)) == (2490, 277)


def test_data_dir_from_environment(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUXPRUNE_DATA_DIR", str(data_dir))
    assert resolve_data_dir(None) == data_dir
    assert resolve_data_dir("/elsewhere") == Path("/elsewhere")
    assert len(load_task("glue/rte").dev) == 277
    monkeypatch.delenv("AUXPRUNE_DATA_DIR")
    assert resolve_data_dir(None) is None


def test_missing_data_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AUXPRUNE_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="data.data_dir or AUXPRUNE_DATA_DIR") as err:  # the CLI: --data-dir
        load_task("glue/rte")
    assert "pass --data-dir or set AUXPRUNE_DATA_DIR" in cli_wording(str(err.value))
    with pytest.raises(UserError, match="data directory not found"):
        load_task("glue/rte", tmp_path / "nope")
    with pytest.raises(UserError, match=r"RTE[/\\]train\.tsv: file not found"):
        load_task("glue/rte", tmp_path)


def test_unknown_task_lists_known_names() -> None:
    with pytest.raises(UserError) as info:
        load_task("glue/mnli")
    message = str(info.value)
    assert "glue/rte" in message and "glue/sst2" in message and "path" in message


def test_glue_header_is_checked(tmp_path: Path) -> None:
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("sentence1\tsentence2\tlabel\na\tb\tentailment\n")
    with pytest.raises(UserError, match=r"train\.tsv:1: unexpected header"):
        load_task("glue/rte", tmp_path)


def test_named_task_rejects_user_file_options(data_dir: Path) -> None:
    with pytest.raises(UserError, match="label_map"):
        load_task("glue/rte", data_dir, label_map={"neutral": "not_entailment"})


# --------------------------------------------------------------------------- auxiliary files

AUX_FILES = {
    "snli_dev.tsv": (9842, ("contradiction", "entailment", "neutral")),
    "snli_test.tsv": (9824, ("contradiction", "entailment", "neutral")),
    "sick_entailment.tsv": (9840, ("contradiction", "entailment", "neutral")),
    "sick_relatedness.tsv": (9840, ()),
    "xnli_en_dev.tsv": (2490, ("contradiction", "entailment", "neutral")),
    "xnli_en_test.tsv": (5010, ("contradiction", "entailment", "neutral")),
    "twitter_url_train.tsv": (42200, ("0", "1")),
    "twitter_url_test.tsv": (9324, ("0", "1")),
}


def test_aux_folder_has_exactly_the_expected_files(data_dir: Path) -> None:
    assert sorted(p.name for p in (data_dir / "aux").glob("*.tsv")) == sorted(AUX_FILES)


@pytest.mark.parametrize("name", sorted(AUX_FILES))
def test_aux_files_load_with_defaults(name: str, data_dir: Path) -> None:
    count, labels = AUX_FILES[name]
    examples, spec = _aux(data_dir / "aux" / name)
    assert len(examples) == count
    assert spec.name == Path(name).stem
    assert spec.labels == labels
    assert spec.kind == ("regression" if not labels else "classification")
    assert all(ex.text_b for ex in examples)
    if spec.kind == "regression":
        assert all(1.0 <= ex.label <= 5.0 for ex in examples)


def test_aux_label_map_onto_target_labels(data_dir: Path) -> None:
    rte = NAMED_TASKS["glue/rte"].spec
    two_way = {"entailment": "entailment", "neutral": "not_entailment",
               "contradiction": "not_entailment"}
    examples, spec = read_examples(data_dir / "aux" / "snli_dev.tsv",
                                   text_columns=("sentence1", "sentence2"), label_column="label",
                                   label_map=two_way, labels=rte.labels)
    assert spec.labels == rte.labels
    assert Counter(ex.label for ex in examples) == {0: 3329, 1: 3278 + 3235}


# --------------------------------------------------------------------------- user files


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_user_tsv_with_dev_file(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.tsv", "sentence\tlabel\nx\t10\ny\t2\nz\t2\n")
    dev = _write(tmp_path / "dev.tsv", "sentence\tlabel\nw\t10\n")
    data = load_task("mine", train_file=train, dev_file=dev)
    assert data.spec == TaskSpec("mine", "classification", ("2", "10"), ("accuracy", "f1"),
                                 "accuracy")
    assert [ex.label for ex in data.train] == [1, 0, 0]
    assert data.dev == [Example("w", None, 1)]


def test_user_csv_quoting_bom_and_jsonl(tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "q.csv",
                      '\ufefftext,label\n"hello, world",pos\n"say ""hi""",neg\n')
    examples, spec = read_examples(csv_file)
    assert [ex.text_a for ex in examples] == ["hello, world", 'say "hi"']
    assert spec.labels == ("neg", "pos")
    jsonl = _write(tmp_path / "r.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n'
                                         '\n{"sentence1": "c", "sentence2": "d", "score": 2.5}\n')
    examples, spec = read_examples(jsonl)
    assert spec.kind == "regression"
    assert examples == [Example("a", "b", 1.0), Example("c", "d", 2.5)]


@pytest.mark.parametrize("labels, kind", [
    (["0.5", "1.25", "3"], "regression"),
    (["1", "2", "3"], "classification"),
    ([str(i) for i in range(25)], "regression"),
    (["yes", "no"], "classification"),
])
def test_kind_is_guessed_from_labels(labels: list[str], kind: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "k.tsv", "text\tlabel\n" + "".join(f"t\t{x}\n" for x in labels))
    assert read_examples(path)[1].kind == kind


def test_task_file_without_dev_gets_fixed_stratified_split(tmp_path: Path) -> None:
    rows = "".join(f"s{i}\t{'a' if i % 4 else 'b'}\n" for i in range(100))
    path = _write(tmp_path / "all.tsv", "sentence\tlabel\n" + rows)
    first, second = load_task(str(path)), load_task(str(path))
    assert first.spec.name == "all"
    assert (len(first.train), len(first.dev)) == (90, 10)
    assert first.dev == second.dev
    assert Counter(ex.label for ex in first.dev) == {0: 8, 1: 2}
    assert not set(first.dev) & set(first.train)


def test_label_map_and_explicit_kind(tmp_path: Path) -> None:
    path = _write(tmp_path / "nli.tsv", "sentence1\tsentence2\tlabel\n"
                                        "a\tb\tneutral\nc\td\tentailment\ne\tf\tcontradiction\n")
    examples, spec = read_examples(path, label_map={"neutral": "not_entailment",
                                                    "contradiction": "not_entailment",
                                                    "entailment": "entailment"})
    assert spec.labels == ("entailment", "not_entailment")
    assert [ex.label for ex in examples] == [1, 0, 1]
    numbers = _write(tmp_path / "n.tsv", "text\tlabel\nx\t1\ny\t2\n")
    assert read_examples(numbers, kind="regression")[0][1].label == 2.0


BAD_INPUTS = [
    # (file name, content, load_task keywords, words the message must contain)
    ("empty.tsv", "", {}, ["empty"]),
    ("header.tsv", "sentence\tlabel\n", {}, ["no data rows"]),
    ("short.tsv", "sentence1\tsentence2\tlabel\na\tb\tx\nc\td\n", {},
     [":3", "expected 3 columns", "got 2"]),
    ("long.tsv", "sentence\tlabel\na\tx\tz\n", {}, [":2", "got 3"]),
    ("nolabel.tsv", "sentence\ttarget\na\tx\n", {}, ["label column", "'target'"]),
    ("notext.tsv", "words\tlabel\na\tx\n", {}, ["text column", "'words'"]),
    ("cols.tsv", "sentence\tlabel\na\tx\n", {"text_columns": ("premise",)},
     ["column 'premise'", "'sentence'"]),
    ("commas.tsv", "sentence,label\na,x\n", {}, [":1", "commas", ".csv"]),
    ("tabs.csv", "sentence\tlabel\na\tx\n", {}, [":1", "tabs", ".tsv"]),
    ("latin1.tsv", b"sentence\tlabel\na\tx\ncaf\xe9\ty\n", {}, [":3", "UTF-8"]),
    ("broken.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n', {},
     [":2", "invalid JSON"]),
    ("array.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n', {}, [":2", "JSON object"]),
    ("missing.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', {},
     [":2", "missing field 'label'"]),
    ("nan.tsv", "text\tscore\na\t1.5\nb\tnan\n", {}, [":3", "NaN"]),
    ("inf.tsv", "text\tlabel\na\t1.5\nb\tinf\n", {"kind": "regression"}, [":3", "NaN"]),
    ("word.tsv", "text\tscore\na\t1.5\nb\thigh\n", {}, [":3", "not a number"]),
    ("blank.tsv", "sentence1\tsentence2\tlabel\na\t \tx\n", {}, [":2", "'sentence2'", "empty"]),
    ("nullcell.jsonl", '{"text": null, "label": "x"}\n', {}, [":1", "'text'"]),
    ("onlyone.tsv", "text\tlabel\na\tx\nb\tx\n", {}, ["one class", "'x'"]),
    ("unmapped.tsv", "text\tlabel\na\tx\nb\ty\n", {"label_map": {"x": "1"}},
     [":3", "'y'", "label_map"]),
    ("dupes.tsv", "text\ttext\tlabel\na\tb\tx\n", {}, [":1", "duplicate", "'text'"]),
    ("table.xlsx", "text,label\n", {}, ["unsupported", ".xlsx"]),
    ("badkind.tsv", "text\tlabel\na\tx\n", {"kind": "ranking"}, ["kind", "'ranking'"]),
    ("quote.csv", 'text,label\na,x\n"b"c,y\n', {}, [":3", "malformed CSV"]),
]


@pytest.mark.parametrize("name, content, options, words", BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_user_input(name: str, content: str | bytes, options: dict, words: list[str],
                        tmp_path: Path) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(UserError) as info:
        load_task(str(path), **options)
    message = str(info.value)
    assert "\n" not in message
    assert name in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_dev_label_unknown_to_train(tmp_path: Path) -> None:
    train = _write(tmp_path / "tr.tsv", "text\tlabel\na\tx\nb\ty\n")
    dev = _write(tmp_path / "dv.tsv", "text\tlabel\na\tx\nb\tz\n")
    with pytest.raises(UserError, match=r"dv\.tsv:3: unknown label 'z'"):
        load_task("t", train_file=train, dev_file=dev)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"gone\.tsv: file not found"):
        load_task(str(tmp_path / "gone.tsv"))


# --------------------------------------------------------------------------- subsampling


def _labelled(counts: dict[int, int]) -> list[Example]:
    return [Example(f"{label}-{i}", None, label)
            for label, count in counts.items() for i in range(count)]


def test_subsample_stratified() -> None:
    examples = _labelled({0: 70, 1: 20, 2: 13})
    chosen = subsample(examples, 25, seed=1, stratify=True)
    assert len(chosen) == 25
    counts = Counter(ex.label for ex in chosen)
    for label, total in {0: 70, 1: 20, 2: 13}.items():
        assert abs(counts[label] - 25 * total / len(examples)) < 1
    assert chosen == subsample(examples, 25, seed=1, stratify=True)
    assert chosen != subsample(examples, 25, seed=2, stratify=True)
    assert [examples.index(ex) for ex in chosen] == sorted(examples.index(ex) for ex in chosen)


def test_subsample_real_task_keeps_proportions(data_dir: Path) -> None:
    train = _named("glue/mrpc", data_dir).train
    chosen = subsample(train, 500, seed=0, stratify=True)
    assert len(chosen) == 500
    assert abs(sum(ex.label for ex in chosen) - 500 * 2474 / 3668) < 1


def test_subsample_edge_cases() -> None:
    examples = _labelled({0: 5, 1: 5})
    everything = subsample(examples, None, seed=0, stratify=True)
    assert everything == examples and everything is not examples
    assert subsample(examples, 50, seed=0, stratify=True) == examples
    assert subsample(examples, 0, seed=0, stratify=True) == []
    scores = [Example(str(i), None, float(i)) for i in range(30)]
    picked = subsample(scores, 7, seed=3, stratify=True)
    assert len(picked) == 7 and picked == subsample(scores, 7, seed=3, stratify=False)
    with pytest.raises(UserError, match="0 or more"):
        subsample(examples, -1, seed=0, stratify=False)


# --------------------------------------------------------------------------- metrics


def _spec(kind: str, metrics: tuple[str, ...]) -> TaskSpec:
    labels = ("0", "1") if kind == "classification" else ()
    return TaskSpec("t", kind, labels, metrics, metrics[0])  # type: ignore[arg-type]


CLASSIFICATION = _spec("classification", ("accuracy", "f1", "matthews"))
REGRESSION = _spec("regression", ("pearson", "spearman"))


def test_classification_metrics_by_hand() -> None:
    # tp=2 fp=1 fn=1 tn=1: acc 3/5, f1 = 4/6, mcc = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    result = compute_metrics(CLASSIFICATION, [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert list(result) == ["accuracy", "f1", "matthews"]
    assert result == pytest.approx({"accuracy": 0.6, "f1": 2 / 3, "matthews": 1 / 6})


def test_classification_metrics_degenerate() -> None:
    constant = compute_metrics(CLASSIFICATION, [1, 1, 1, 1], [1, 0, 1, 1])
    assert constant == pytest.approx({"accuracy": 0.75, "f1": 6 / 7, "matthews": 0.0})
    no_positives = compute_metrics(CLASSIFICATION, [0, 0], [0, 0])
    assert no_positives == {"accuracy": 1.0, "f1": 0.0, "matthews": 0.0}
    perfect = compute_metrics(CLASSIFICATION, [0, 1, 0], [0, 1, 0])
    assert perfect == {"accuracy": 1.0, "f1": 1.0, "matthews": 1.0}
    inverted = compute_metrics(CLASSIFICATION, [1, 0], [0, 1])
    assert inverted["matthews"] == pytest.approx(-1.0)


def test_multiclass_matthews() -> None:
    spec = TaskSpec("m", "classification", ("a", "b", "c"), ("matthews",), "matthews")
    # confusion rows=true [[1,1,0],[0,1,0],[0,0,1]]: c=3, s=4, t=(2,1,1), p=(1,2,1)
    expected = (3 * 4 - (2 * 1 + 1 * 2 + 1 * 1)) / math.sqrt((16 - 6) * (16 - 6))
    assert compute_metrics(spec, [0, 1, 1, 2], [0, 0, 1, 2])["matthews"] == pytest.approx(expected)


def test_regression_metrics_by_hand() -> None:
    # deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5): r = 4 / 5; the ranks are the values.
    assert compute_metrics(REGRESSION, [1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(
        {"pearson": 0.8, "spearman": 0.8})
    cubic = compute_metrics(REGRESSION, [1, 2, 3, 4], [1, 8, 27, 64])
    assert cubic["spearman"] == pytest.approx(1.0) and cubic["pearson"] < 0.99
    assert compute_metrics(REGRESSION, [3, 2, 1], [1, 2, 3]) == pytest.approx(
        {"pearson": -1.0, "spearman": -1.0})


def test_regression_metrics_constant_side_is_zero() -> None:
    assert compute_metrics(REGRESSION, [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == {
        "pearson": 0.0, "spearman": 0.0}
    assert compute_metrics(REGRESSION, [1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == {
        "pearson": 0.0, "spearman": 0.0}


def test_metrics_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        compute_metrics(CLASSIFICATION, [1, 0], [1])


def test_constant_baselines(data_dir: Path) -> None:
    mrpc = _named("glue/mrpc", data_dir)
    assert constant_baseline(mrpc.spec, mrpc.train, mrpc.dev) == pytest.approx(
        {"accuracy": 279 / 408, "f1": 2 * 279 / (2 * 279 + 129)})
    stsb = _named("glue/stsb", data_dir)
    assert constant_baseline(stsb.spec, stsb.train, stsb.dev) == {"pearson": 0.0, "spearman": 0.0}
    cola = _named("glue/cola", data_dir)
    assert constant_baseline(cola.spec, cola.train, cola.dev) == pytest.approx(
        {"matthews": 0.0, "accuracy": 721 / 1043})
