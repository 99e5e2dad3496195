"""`auxprune.predict` and `auxprune predict`: labels, scores, regression values, input order kept."""

from __future__ import annotations

import json

import pytest
import torch

import auxprune
from auxprune.cli import main
from auxprune.errors import UserError
from conftest import RTE_LABELS, save_pruned, tiny_model

torch.set_num_threads(1)

TEXTS = ["a dog runs in the park with a red ball.", "yes", "the cat sat.", "nobody came to the party last night",
         "x", "two men play chess.", "it is raining hard today, so we stay in", "ok then"]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("reg")
    save_pruned(folder, tokenizer, num_labels=1, head_scale=30.0)
    return folder


def one_by_one(model, tokenizer, texts, pairs=None):
    """Logits of each input on its own (no padding at all)."""
    out = []
    with torch.no_grad():
        for i, text in enumerate(texts):
            enc = tokenizer(text, None if pairs is None else pairs[i], return_tensors="pt")
            out.append(model(**enc).logits[0])
    return torch.stack(out)


def test_classification_labels_scores_and_order(run):
    model, tokenizer = auxprune.load(run)
    results = auxprune.predict(run, TEXTS, batch_size=3)
    logits = one_by_one(model, tokenizer, TEXTS)
    probs = logits.softmax(-1)
    assert len(results) == len(TEXTS)
    for result, p in zip(results, probs):
        assert set(result) == {"label", "score"}
        assert result["label"] == RTE_LABELS[int(p.argmax())]
        assert result["score"] == pytest.approx(float(p.max()), abs=1e-5)
    assert {r["label"] for r in results} == set(RTE_LABELS.values())  # both labels occur: order is really checked
    assert len({round(r["score"], 5) for r in results}) == len(TEXTS)
    # Batching (sorted by length, padded per batch) does not change anything.
    for batch_size in (1, 100):
        again = auxprune.predict((model, tokenizer), TEXTS, batch_size=batch_size)
        assert [r["label"] for r in again] == [r["label"] for r in results]
        assert [r["score"] for r in again] == pytest.approx([r["score"] for r in results], abs=1e-5)


def test_pairs(run):
    model, tokenizer = auxprune.load(run)
    pairs = list(reversed(TEXTS))
    results = auxprune.predict((model, tokenizer), TEXTS, pairs, batch_size=4)
    probs = one_by_one(model, tokenizer, TEXTS, pairs).softmax(-1)
    assert [r["label"] for r in results] == [RTE_LABELS[int(i)] for i in probs.argmax(-1)]
    assert [r["score"] for r in results] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-5)
    single = auxprune.predict((model, tokenizer), TEXTS, batch_size=4)
    assert [r["score"] for r in results] != pytest.approx([r["score"] for r in single], abs=1e-6)


def test_regression_values(regression_run):
    model, tokenizer = auxprune.load(regression_run)
    results = auxprune.predict(regression_run, TEXTS, batch_size=5)
    expected = one_by_one(model, tokenizer, TEXTS)[:, 0].tolist()
    assert all(set(r) == {"value"} and isinstance(r["value"], float) for r in results)
    assert [r["value"] for r in results] == pytest.approx(expected, abs=1e-5)
    assert len({round(v, 4) for v in expected}) == len(TEXTS)


def test_long_texts_are_truncated_to_the_model_length(run):
    model, tokenizer = auxprune.load(run)
    long = "the quick brown fox jumps over the lazy dog " * 20  # far more letters than the 64 positions
    result = auxprune.predict((model, tokenizer), [long, "short"])
    enc = tokenizer(long, truncation=True, max_length=model.config.max_seq_len, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).logits.softmax(-1)[0]
    assert result[0]["score"] == pytest.approx(float(expected.max()), abs=1e-5)


def test_bad_inputs_are_user_errors(run):
    assert auxprune.predict(run, []) == []
    with pytest.raises(UserError, match="2 texts but 1 pairs"):
        auxprune.predict(run, ["a", "b"], ["c"])
    with pytest.raises(UserError, match=r"texts\[1\]"):
        auxprune.predict(run, ["a", 3])
    with pytest.raises(UserError, match="batch_size"):
        auxprune.predict(run, ["a"], batch_size=0)
    with pytest.raises(UserError, match="model folder not found"):
        auxprune.predict(run / "nope", ["a"])


def test_module_import_keeps_auxprune_predict_callable(run):
    import sys

    import auxprune.predict  # noqa: F401 - importing the submodule rebinds the package attribute to it

    module = sys.modules["auxprune.predict"]
    assert auxprune.predict is module  # ... and it still works as the function
    assert auxprune.predict(run, ["the cat sat."]) == module.predict_texts(run, ["the cat sat."])


def test_predict_cli(run, regression_run, capsys):
    assert main(["predict", str(run), "the cat sat.", "a cat is sitting.", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == pytest.approx(auxprune.predict(run, ["the cat sat."], ["a cat is sitting."])[0])
    assert main(["predict", str(run / "model"), "the cat sat."]) == 0
    label, score = capsys.readouterr().out.strip().split("\t")
    expected = auxprune.predict(run, ["the cat sat."])[0]
    assert label == expected["label"] and float(score) == pytest.approx(expected["score"], abs=1e-4)
    assert main(["predict", str(regression_run), "two dogs play.", "--json"]) == 0
    value = json.loads(capsys.readouterr().out)["value"]
    assert value == pytest.approx(auxprune.predict(regression_run, ["two dogs play."])[0]["value"], abs=1e-6)
    assert main(["predict", str(run / "missing"), "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing" in err and len(err.splitlines()) == 1


# The training side: none of it is needed to load a saved model and predict with it.
TRAINING_MODULES = ("auxprune.train", "auxprune.loop", "auxprune.pipeline", "auxprune.phases", "auxprune.checkpoint",
                    "auxprune.config", "auxprune.distill", "auxprune.losses", "auxprune.masks", "auxprune.pruners",
                    "auxprune.sparsity", "auxprune.structure", "auxprune.surgery", "auxprune.transfer", "auxprune.data",
                    "auxprune.evaluate")  # (transformers itself may import accelerate and tqdm)


@pytest.mark.parametrize("head", ["cross", "bi"])
def test_load_and_predict_import_no_training_code(run, tokenizer, tmp_path, head):
    """`auxprune.load` / `auxprune.predict` in a fresh interpreter leave the training stack unimported,
    for a cross-encoder and for a bi-encoder (whose sides are padded by the same code as training batches)."""
    import subprocess
    import sys

    if head == "bi":
        from auxprune.output import save_model

        run = tmp_path / "bi"
        save_model(tiny_model(num_labels=2, head="bi", id2label=RTE_LABELS), tokenizer, run / "model")
    script = ("import sys, json, auxprune\n"
              f"model, tokenizer = auxprune.load({str(run)!r})\n"
              f"result = auxprune.predict({str(run)!r}, ['a dog runs.'], pairs=['a cat sits.'])\n"
              "assert result and 'label' in result[0], result\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    found = [m for m in loaded if any(m == name or m.startswith(name + ".") for name in TRAINING_MODULES)]
    assert not found, found
