"""Bad input gives one clear line and exit code 2, before any training, and half-writes nothing.

Every case runs the `auxprune` command in-process. For each one: exit code 2; stderr is exactly one
line, `auxprune: error: ...`, naming the file (and line or field) and what was expected; no
traceback; no forward pass of a model (nothing was trained); and the files under the test's folder
and the fixtures' models are as they were: no model, no partial or temporary file. The one thing a
rejected `prune` may still leave, until pipeline.py validates before it creates the output folder,
is its failure record (see `test_rejected_prune_leaves_no_output_folder`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from auxprune.cli import main
from auxprune.model.encoder import AuxpruneForSequenceClassification
from auxprune.model.loading import load_tokenizer
from auxprune.output import save_model
from conftest import tiny_model

torch.set_num_threads(1)

GOOD_TSV = "sentence\tlabel\n" + "".join(f"film number {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(20))  # 18 train + 2 dev: enough to train on
SHORT = ["--set", "model.max_seq_len=32"]  # the tiny BERT has 64 positions


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, tiny_bert) -> Path:
    """A run folder holding a tiny auxprune model (for export)."""
    folder = tmp_path_factory.mktemp("run")
    save_model(tiny_model(num_labels=2), load_tokenizer(tiny_bert), folder / "model")
    return folder


@dataclass
class Env:
    """What a case needs: a scratch folder, the tiny models, the data, and monkeypatch."""

    tmp: Path
    tiny_bert: Path
    saved_run: Path
    data_dir: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def prune(self, task: str | None = None, *extra: str, model: Path | None = None,
              output: Path | None = None) -> list[str]:
        """`auxprune prune` on `task` (default: a good TSV file) with the tiny BERT, into `out`."""
        return ["prune", "--model", str(model or self.tiny_bert), "--task", task or self.file("train.tsv", GOOD_TSV),
                "--output", str(output or self.out), *SHORT, *extra]

    def model(self, change: Callable[[Path], object]) -> Path:
        """A copy of the tiny BERT folder with `change` applied to it."""
        path = self.tmp / "bert"
        shutil.copytree(self.tiny_bert, path)
        change(path)
        return path


def bigger_tokenizer(path: Path) -> None:
    from transformers import BertTokenizerFast

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(145)]
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}).save_pretrained(path)


def no_tokenizer(path: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)


def truncate(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def garbage(path: Path) -> None:
    (path / "model.safetensors").write_bytes(os.urandom(64) + b"\x00" * 4000)


def edit_config(**fields) -> Callable[[Path], None]:
    """Set `fields` in a model folder's config.json."""
    import json

    def change(path: Path) -> None:
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, **fields}))

    return change


def max_pooling(path: Path, config: dict | None = None) -> None:
    """Sentence-transformers files naming max pooling, which the encoder does not reproduce."""
    import json

    (path / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling",
                                                    "type": "sentence_transformers.models.Pooling"}]))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps(config or {"pooling_mode_max_tokens": True}))


def max_pooling_st5(path: Path) -> None:
    """The same as sentence-transformers >= 5 writes it: one pooling_mode field."""
    max_pooling(path, {"embedding_dimension": 32, "pooling_mode": "max", "include_prompt": True})


def without_pooler(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(path / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("pooler.")}, path / "model.safetensors")


def stsb_dir(env: Env, score: str) -> str:
    """A data folder in the GLUE layout whose STS-B training file has one score `score` (line 3)."""
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"

    def row(i: int, value: str) -> str:
        return f"{i}\tmain-captions\tMSRvid\t2012test\t{i}\tnone\tnone\tA man plays.\tA man is playing.\t{value}\n"

    env.file("stsb/glue/STS-B/train.tsv", header + row(0, "4.2") + row(1, score) + row(2, "1.0"))
    env.file("stsb/glue/STS-B/dev.tsv", header + row(0, "3.0") + row(1, "0.5"))
    return str(env.tmp / "stsb")


def export_without_space(env: Env) -> list[str]:
    """`auxprune export` whose ONNX writer writes half a file, then finds the disk full."""

    def full_disk(model, args, f, **kwargs):
        Path(f).write_bytes(b"\x08\x07partial onnx")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))

    env.monkeypatch.setattr(torch.onnx, "export", full_disk)
    return ["export", str(env.saved_run), "--onnx", str(env.tmp / "exports" / "model.onnx")]


def existing_output(env: Env) -> list[str]:
    env.file("out/report.json", '{"status": "ok"}\n')
    return env.prune()


def output_is_file(env: Env) -> list[str]:
    env.file("out", "keep me\n")
    return env.prune()


def output_below_file(env: Env) -> list[str]:
    env.file("blocker", "a file, not a folder\n")
    return env.prune(output=env.tmp / "blocker" / "out")


def readonly_parent(env: Env) -> list[str]:
    locked = env.tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return env.prune(output=locked / "out")


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# (id, argv builder, substrings the error line must contain)
CASES: list = [
    # ---- data files
    ("missing data file", lambda e: e.prune(str(e.tmp / "nowhere.tsv")),
     ["nowhere.tsv: file not found", "expected a data file"]),
    ("tsv separated by semicolons", lambda e: e.prune(e.file("train.tsv", "sentence;label\nok;pos\nbad;neg\n")),
     ["train.tsv:1:", "semicolon", "expected"]),
    ("csv separated by tabs", lambda e: e.prune(e.file("train.csv", "sentence\tlabel\nok\tpos\nbad\tneg\n")),
     ["train.csv:1:", "tab", ".tsv"]),
    ("missing text column", lambda e: e.prune(None, "--set", "data.text_columns=[premise,hypothesis]"),
     ["train.tsv:1:", "no text column 'premise'", "'sentence', 'label'"]),
    ("missing label column", lambda e: e.prune(None, "--set", "data.label_column=gold"),
     ["train.tsv:1:", "no label column 'gold'", "'sentence', 'label'"]),
    ("dev label not in training labels",
     lambda e: e.prune(None, "--set", "data.dev_file=" + e.file("dev.tsv", "sentence\tlabel\nok\tpos\nhm\tmaybe\n")),
     ["dev.tsv:3:", "'maybe'", "expected one of 'neg', 'pos'"]),
    ("label not in label_map",
     lambda e: e.prune(e.file("train.tsv", "sentence\tlabel\nok\tpos\nbad\tneg\nhm\tmeh\n"),
                       "--set", "data.label_map={pos: positive, neg: negative}"),
     ["train.tsv:4:", "'meh'", "label_map", "'pos', 'neg'"]),
    ("dev label set differs from training",
     lambda e: e.prune(e.file("train.tsv", "sentence\tlabel\nok\t0\nbad\t1\n"), "--set", "data.dev_file=" + e.file(
         "dev.tsv", "sentence\tlabel\nok\tentailment\nbad\tnot_entailment\n")),
     ["dev.tsv:2:", "'entailment'", "'0', '1'", "'not_entailment'"]),
    ("empty file", lambda e: e.prune(e.file("train.tsv", "")),
     ["train.tsv:", "empty"]),
    ("header only", lambda e: e.prune(e.file("train.tsv", "sentence\tlabel\n")),
     ["train.tsv:", "header", "no data rows"]),
    ("row with a missing field",
     lambda e: e.prune(e.file("train.tsv", "sentence\tlabel\nok\tpos\nno label here\nbad\tneg\n")),
     ["train.tsv:3:", "expected 2 columns", "got 1"]),
    ("jsonl row without the label",
     lambda e: e.prune(e.file("train.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "bad"}\n')),
     ["train.jsonl:2:", "missing field 'label'"]),
    ("NaN regression label", lambda e: e.prune(e.file("train.tsv", "sentence\tscore\na\t1.5\nb\tnan\nc\t2.5\n")),
     ["train.tsv:3:", "'nan'", "finite"]),
    ("infinite regression label", lambda e: e.prune(e.file("train.tsv", "sentence\tscore\na\t1.5\nb\t2.5\nc\t-inf\n")),
     ["train.tsv:4:", "'-inf'", "finite"]),
    ("non-numeric regression label", lambda e: e.prune(e.file("train.tsv", "sentence\tscore\na\thigh\nb\t2.5\n")),
     ["train.tsv:2:", "'high'", "number"]),
    ("STS-B score out of range",
     lambda e: e.prune("glue/stsb", "--data-dir", stsb_dir(e, "7.5")),
     ["STS-B/train.tsv:3:", "score 7.5 is out of range", "[0, 5]"]),
    ("non-UTF-8 bytes", lambda e: e.prune(e.file("train.tsv", b"sentence\tlabel\nok\tpos\nd\xe9j\xe0 vu\tneg\n")),
     ["train.tsv:3:", "UTF-8"]),
    ("invalid JSONL line", lambda e: e.prune(e.file("train.jsonl", '{"text": "ok", "label": "pos"}\n{text: bad}\n')),
     ["train.jsonl:2:", "invalid JSON"]),
    # ---- options and config
    ("sparsity 1.5", lambda e: e.prune(None, "--sparsity", "1.5"),
     ["prune.target_sparsity", "less than 1", "1.5"]),
    ("sparsity -0.1", lambda e: e.prune(None, "--sparsity", "-0.1"),
     ["prune.target_sparsity", "greater than or equal to 0", "-0.1"]),
    ("unknown task name", lambda e: e.prune("glue/mnlx"),
     ["'glue/mnlx'", "expected one of glue/rte"]),
    ("unknown preset", lambda e: e.prune(None, "--preset", "turbo"),
     ["--preset 'turbo'", "'full', 'quick'"]),
    ("unknown config key", lambda e: e.prune(None, "--set", "prune.epochz=3"),
     ["prune.epochz", "Extra inputs are not permitted"]),
    ("malformed YAML config", lambda e: e.prune(None, "--config", e.file("bad.yaml", "prune: [1, 2\nseed: 3\n")),
     ["bad.yaml", "YAML"]),
    ("sparsity and a parameter count", lambda e: e.prune(None, "--sparsity", "0.5", "--target-params", "5000"),
     ["--sparsity (prune.target_sparsity) and --target-params (prune.target_params) given together",
      "expected one of --sparsity, --target-params, --size-of"]),
    ("a parameter count and --set size_of", lambda e: e.prune(None, "--target-params", "5000", "--set", "prune.size_of=minilm"),
     ["--target-params", "--size-of", "given together"]),
    ("a parameter count larger than the model", lambda e: e.prune(None, "--target-params", "20000"),
     ["prune.target_params 20,000", "not fewer than the 13,578", "<tiny_bert>"]),
    ("a parameter count the gated families cannot reach",
     lambda e: e.prune(None, "--target-params", "100", "--set", "prune.families=[hidden]"),
     ["prune.target_params 100", "gating only hidden leaves at least 682 of the 13,578", "prune.families"]),
    ("a parameter count of 0", lambda e: e.prune(None, "--target-params", "0"),
     ["prune.target_params", "greater than or equal to 1"]),
    ("the size of a larger model", lambda e: e.prune(None, "--size-of", "minilm"),
     ["prune.size_of minilm", "10,646,784", "not fewer than the 13,578"]),
    ("the size of a missing folder", lambda e: e.prune(None, "--size-of", str(e.tmp / "nowhere")),
     ["prune.size_of:", "nowhere: model folder not found"]),
    # ---- model folders
    ("model without config.json", lambda e: e.prune(None, model=e.model(lambda p: (p / "config.json").unlink())),
     ["bert: no config.json"]),
    ("model without weights", lambda e: e.prune(None, model=e.model(lambda p: (p / "model.safetensors").unlink())),
     ["bert: no weights", "expected model.safetensors"]),
    ("truncated safetensors", lambda e: e.prune(None, model=e.model(truncate)),
     ["bert/model.safetensors:", "truncated"]),
    ("garbage safetensors", lambda e: e.prune(None, model=e.model(garbage)),
     ["bert/model.safetensors:", "corrupted"]),
    ("relative position embeddings", lambda e: e.prune(None, model=e.model(edit_config(position_embedding_type="relative_key"))),
     ["bert/config.json:", "position_embedding_type 'relative_key'", "expected 'absolute'"]),
    ("heads that do not divide the width", lambda e: e.prune(None, model=e.model(edit_config(num_attention_heads=5))),
     ["bert/config.json:", "hidden_size 32 is not a multiple of num_attention_heads 5"]),
    ("an unknown activation", lambda e: e.prune(None, model=e.model(edit_config(hidden_act="swooshy"))),
     ["bert/config.json:", "hidden_act 'swooshy'"]),
    ("MPNet with other bucket counts", lambda e: e.prune(None, model=e.model(edit_config(
        model_type="mpnet", relative_attention_num_buckets=64))),
     ["bert/config.json:", "relative_attention_num_buckets is 64; expected 32"]),
    ("sentence-transformers max pooling", lambda e: e.prune(None, model=e.model(max_pooling)),
     ["bert/1_Pooling/config.json:", "pooling_mode_max_tokens cannot be reproduced", "pooling_mode_mean_tokens"]),
    ("sentence-transformers 5 max pooling", lambda e: e.prune(None, model=e.model(max_pooling_st5)),
     ["bert/1_Pooling/config.json:", "pooling_mode 'max' cannot be reproduced", 'pooling_mode "mean" or "cls"']),
    ("pooler pooling without pooler weights",
     lambda e: e.prune(None, "--set", "model.pooling=pooler", model=e.model(without_pooler)),
     ["bert: pooling 'pooler' asked for", "no pooler weights"]),
    ("max_seq_len beyond the model's positions", lambda e: e.prune(None, "--set", "model.max_seq_len=256"),
     ["model.max_seq_len 256", "<tiny_bert>", "only 64 tokens"]),
    ("tokenizer larger than the vocabulary", lambda e: e.prune(None, model=e.model(bigger_tokenizer)),
     ["bert:", "tokenizer has 150 tokens", "vocabulary has 99"]),
    ("missing tokenizer", lambda e: e.prune(None, model=e.model(no_tokenizer)),
     ["bert:", "tokenizer"]),
    ("too few training examples",
     lambda e: e.prune(e.file("few.tsv", "sentence\tlabel\n" + "".join(f"film {i}\t{'pos' if i % 2 else 'neg'}\n"
                                                                     for i in range(8)))),
     ["few.tsv:", "training examples; at least 10 are needed"]),
    ("a single class",
     lambda e: e.prune(e.file("one_class.tsv", GOOD_TSV.replace("pos", "neg")), "--set", "data.kind=classification"),
     ["one_class.tsv:", "only one class", "at least two"]),
    # ---- outputs
    ("output is a regular file", output_is_file,
     ["out:", "not a folder"]),
    pytest.param("output in a read-only folder", readonly_parent, ["locked/out:", "not writable"],
                 id="output in a read-only folder",
                 marks=pytest.mark.skipif(ROOT, reason="root can write into a 0o500 folder")),
    ("output below a regular file", output_below_file,
     ["blocker/out:", "not writable", "not a directory"]),
    ("existing output without --overwrite", existing_output,
     ["out:", "--overwrite"]),
    ("disk full during ONNX export", export_without_space,
     ["model.onnx", "no space left"]),
    # ---- not a model
    ("predict on a data folder",
     lambda e: ["predict", str(Path(e.file("data/train.tsv", GOOD_TSV)).parent), "some text"],
     ["data: no config.json"]),
    ("eval on a Hugging Face BERT folder", lambda e: ["eval", str(e.tiny_bert), "--task", "glue/rte",
                                                      "--data-dir", str(e.data_dir)],
     ["<tiny_bert>: not an auxprune model", "model_type 'bert'"]),
    ("inspect on an empty folder", lambda e: ["inspect", str(e.tmp)],
     [": no config.json"]),
]


def _params():
    for case in CASES:
        yield case if hasattr(case, "marks") else pytest.param(*case, id=case[0])


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under `roots`, with a hash of each file's bytes."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            found[str(path.relative_to(root.parent))] = (
                hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
    return found


def no_forward_pass(self, *args, **kwargs):
    raise AssertionError("the model ran (training or evaluation started) before the bad input was rejected")


@pytest.mark.parametrize("name, build, expected", list(_params()))
def test_bad_input_is_one_clear_line(name, build, expected, tiny_bert, saved_run, data_dir, tmp_path, monkeypatch,
                                     capsys):
    env = Env(tmp_path, tiny_bert, saved_run, data_dir, monkeypatch)
    argv = build(env)
    # Fail fast: rejected before any forward pass (an AssertionError here would exit 1, not 2).
    monkeypatch.setattr(AuxpruneForSequenceClassification, "forward", no_forward_pass)
    roots = (tmp_path, tiny_bert, saved_run)
    before = snapshot(*roots)
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err + captured.out
    assert len(err.splitlines()) == 1 and len(lines) == 1, err
    assert lines[0].startswith("auxprune: error: "), err
    for part in expected:
        part = part.replace("<tiny_bert>", tiny_bert.name)
        assert part.lower() in lines[0].lower(), f"{part!r} not in {lines[0]!r}"
    after = snapshot(*roots)
    assert not [p for p in after if ".tmp" in Path(p).name], after
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert not changed, changed


def test_rejected_prune_leaves_no_output_folder(tiny_bert, tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\nok\tpos\nno label here\n")
    out = tmp_path / "out"
    assert main(["prune", "--model", str(tiny_bert), "--task", str(train), "--output", str(out), *SHORT]) == 2
    assert "train.tsv:3:" in capsys.readouterr().err
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_pickled_weights_are_refused_for_safety(tiny_bert, tmp_path, capsys):
    """A `pytorch_model.bin` holding pickled objects besides tensors: refused, with the safe way out
    (convert to safetensors), never torch's advice to load it with `weights_only=False`."""
    import argparse

    from safetensors.torch import load_file

    model = tmp_path / "bert"
    shutil.copytree(tiny_bert, model)
    state = load_file(str(model / "model.safetensors"))
    (model / "model.safetensors").unlink()
    torch.save({**state, "args": argparse.Namespace(lr=1.0)}, model / "pytorch_model.bin")
    train = tmp_path / "train.tsv"
    train.write_text(GOOD_TSV, encoding="utf-8")
    code = main(["prune", "--model", str(model), "--task", str(train), "--output", str(tmp_path / "out"), *SHORT])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "pytorch_model.bin" in err and "refused for safety" in err and "safetensors" in err, err
    assert "weights_only" not in err, err


def test_library_errors_name_config_fields_and_the_cli_names_flags(tiny_bert, tmp_path, monkeypatch, capsys):
    """A notebook user (`auxprune.prune(...)`) is told the config field or argument; the command line
    prints the flag for the same thing, word for word as before."""
    from auxprune.cli import cli_wording
    from auxprune.config import build_config
    from auxprune.data.tasks import load_task
    from auxprune.errors import UserError
    from auxprune.model.loading import load_saved
    from auxprune.output import check_output_dir
    from auxprune.transfer.sources import read_plain_text

    monkeypatch.delenv("AUXPRUNE_DATA_DIR", raising=False)
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    cases = [
        (lambda: build_config(overrides=[{"transfer": {"how": "joint"}}]), "(transfer.aux)", "(--aux)"),
        (lambda: build_config("turbo"), "preset 'turbo'", "auxprune: error: --preset 'turbo'"),
        (lambda: read_plain_text(tmp_path / "none.txt"), "transfer.aux mlm:", "auxprune: error: --aux mlm:"),
        (lambda: load_task("glue/rte"), "set data.data_dir or AUXPRUNE_DATA_DIR", "pass --data-dir or set AUXPRUNE_DATA_DIR"),
        (lambda: check_output_dir(full, overwrite=False), "(overwrite=True replaces it)", "(pass --overwrite to replace it)"),
        (lambda: load_saved(tiny_bert), "model.name)", "(a Hugging Face checkpoint is pruned with --model)"),
    ]
    for call, library, cli in cases:
        with pytest.raises(UserError) as err:
            call()
        message = str(err.value)
        assert library in message and "--" not in message, message
        assert cli in f"auxprune: error: {cli_wording(message)}", cli_wording(message)
    # through the command line itself
    assert main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--output", str(tmp_path / "o"),
                 "--how", "joint"]) == 2
    assert "needs at least one auxiliary task (--aux)" in capsys.readouterr().err
