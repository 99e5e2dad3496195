"""Deployment: Hugging Face Auto classes and pipeline, ONNX export checked with onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, pipeline

import auxprune
from auxprune.cli import main
from auxprune.data.tasks import load_task
from auxprune.export import export_onnx
from auxprune.model.encoder import AuxpruneForSequenceClassification, AuxpruneModel
from conftest import ARCHITECTURES, RTE_LABELS, save_pruned

torch.set_num_threads(1)

def rte_batches(tokenizer, data_dir, max_len: int) -> list[dict[str, torch.Tensor]]:
    """Real RTE dev sentences: pairs (truncated), and second sentences alone (short, so the batch is padded)."""
    dev = load_task("glue/rte", data_dir).dev[:6]
    pairs = tokenizer([e.text_a for e in dev], [e.text_b for e in dev], truncation=True, max_length=max_len,
                      padding=True, return_tensors="pt")
    singles = tokenizer([e.text_b for e in dev], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    return [dict(pairs), dict(singles)]


def test_auto_classes_load_a_saved_model(run):
    folder = run / "model"
    model, _ = auxprune.load(run)
    config = AutoConfig.from_pretrained(folder)
    assert type(config).__name__ == "AuxpruneConfig" and config.layer_ffn == [0, 18]
    classifier = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    encoder = AutoModel.from_pretrained(folder).eval()
    assert type(classifier) is AuxpruneForSequenceClassification and type(encoder) is AuxpruneModel
    ids = torch.tensor([[2, 8, 9, 10, 3, 0], [2, 11, 12, 3, 13, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask)
        assert torch.equal(classifier(input_ids=ids, attention_mask=mask).logits, expected.logits)
        out = encoder(ids, mask, output_hidden_states=True)  # AutoModel gives the encoder, HF's output type
        reference, states = model.auxprune.encode(ids, mask)
    assert torch.equal(out.pooler_output, reference) and len(out.hidden_states) == 3
    assert torch.equal(out.last_hidden_state, states[-1]) and torch.equal(out[0], states[-1])


def test_text_classification_pipeline_with_its_defaults(run, tokenizer):
    pipe = pipeline("text-classification", model=str(run / "model"))  # finds the tokenizer in the folder
    texts = ["a cat sat on the mat.", "it rains", "no way, said the man in the long coat!"]
    expected = auxprune.predict(run, texts)
    got = pipe(texts)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert np.allclose([g["score"] for g in got], [e["score"] for e in expected], atol=1e-5)
    assert {g["label"] for g in got} <= set(RTE_LABELS.values())
    pair = pipe({"text": "a cat sat.", "text_pair": "a cat is sitting."})
    assert pair["label"] == auxprune.predict(run, ["a cat sat."], ["a cat is sitting."])[0]["label"]
    long = "the quick brown fox jumps over the lazy dog " * 10  # more letters than the 64 positions
    truncated = pipe(long, truncation=True, max_length=pipe.model.config.max_seq_len)[0]
    assert truncated["score"] == pytest.approx(auxprune.predict(run, [long])[0]["score"], abs=1e-5)


def test_pipeline_gives_regression_values(tmp_path, tokenizer):
    save_pruned(tmp_path, tokenizer, num_labels=1)
    pipe = pipeline("text-classification", model=str(tmp_path / "model"), tokenizer=tokenizer)
    out = pipe(["two dogs play.", "a man sings a song"])
    values = [r["value"] for r in auxprune.predict(tmp_path, ["two dogs play.", "a man sings a song"])]
    assert np.allclose([o["score"] for o in out], values, atol=1e-5)  # raw value: no sigmoid for regression


def test_auto_classes_load_a_cut_mpnet(tmp_path, tokenizer):
    """MPNet's switches (no segments, the position bias and each layer's kept heads) travel in config.json."""
    small = save_pruned(tmp_path, tokenizer, **ARCHITECTURES["mpnet"])
    config = AutoConfig.from_pretrained(tmp_path / "model")
    assert config.layer_head_ids == [[3], [0, 1, 2, 3]] and config.relative_attention_num_buckets == 32
    assert config.type_vocab_size == 0
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    ids = torch.tensor([[2, 8, 9, 10, 3, 0], [2, 11, 12, 3, 13, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        assert torch.equal(classifier(input_ids=ids, attention_mask=mask).logits,
                           small.eval()(input_ids=ids, attention_mask=mask).logits)


@pytest.mark.parametrize("pooling,drop_attention,architecture",
                         [("mean", False, "bert"), ("pooler", True, "bert"), ("mean", False, "mpnet")])
def test_onnx_matches_torch_on_rte_dev_sentences(tmp_path, tokenizer, data_dir, pooling, drop_attention, architecture):
    small = save_pruned(tmp_path, tokenizer, pooling=pooling, drop_attention=drop_attention, seed=2,
                        **ARCHITECTURES[architecture])
    assert small.config.layer_ffn[0] == 0  # a layer without its FFN block
    assert drop_attention == (small.config.layer_heads[1] == 0)
    result = export_onnx(tmp_path, tmp_path / "out" / "model.onnx")
    assert result["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    batches = rte_batches(tokenizer, data_dir, small.config.max_seq_len)
    assert batches[0]["input_ids"].shape[0] == 6 and batches[0]["input_ids"].shape[1] == small.config.max_seq_len
    assert (batches[1]["attention_mask"] == 0).any()  # padded rows
    assert batches[0]["token_type_ids"].any()  # two segments
    assert len(torch.unique(batches[0]["input_ids"])) > 20  # real text, not a run of [UNK]
    model, _ = auxprune.load(tmp_path)
    for batch in batches:
        with torch.no_grad():
            expected = model(**batch).logits.numpy()
        got = session.run(["logits"], {k: v.numpy() for k, v in batch.items()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4
        assert np.abs(expected).max() > 1e-3  # the comparison is not between two zero vectors


def test_export_cli(run, tmp_path, capsys):
    out = tmp_path / "rte.onnx"
    assert main(["export", str(run), "--onnx", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["onnx"] == str(out) and result["max_abs_diff"] <= 1e-4
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    assert inputs == {name: ["batch", "sequence"] for name in ("input_ids", "attention_mask", "token_type_ids")}
    assert [o.name for o in graph.graph.output] == ["logits"]
    assert main(["export", str(run / "model"), "--onnx", str(tmp_path / "b.onnx")]) == 0
    assert "max |logit diff|" in capsys.readouterr().out


def test_export_cli_user_errors(run, tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing" in err and len(err.splitlines()) == 1
    (tmp_path / "dir.onnx").mkdir()
    assert main(["export", str(run), "--onnx", str(tmp_path / "dir.onnx")]) == 2
    assert "--onnx" in capsys.readouterr().err
