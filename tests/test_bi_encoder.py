"""Bi-encoder heads (`model.head=bi`): the pair layout, the heads, cutting, the whole job, and use
of the saved folder with sentence-transformers, `auxprune predict`, `auxprune embed` and ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ARCHITECTURES, sample_masks, tiny_model

from auxprune.cli import main
from auxprune.data.batching import collate, encode
from auxprune.data.tasks import Example
from auxprune.surgery import cut

FAST = ["--set", "teacher.epochs=1", "--set", "prune.epochs=2", "--set", "finetune.epochs=1",
        "--set", "train.batch_size=8", "--set", "data.max_dev_examples=40", "--set", "model.max_seq_len=32",
        "--set", "train.min_epoch_examples=0"]


def pair_batch(pairs: int = 3, seed: int = 2) -> tuple[dict, dict, dict]:
    """Sides A and B of `pairs` pairs of different lengths, and the stacked bi-encoder batch."""
    g = torch.Generator().manual_seed(seed)
    items = [{"input_ids": torch.randint(5, 99, (4 + i,), generator=g).tolist(),
              "input_ids_b": torch.randint(5, 99, (9 - 2 * i,), generator=g).tolist(), "label": 0.5 * i}
             for i in range(pairs)]
    a = collate([{"input_ids": it["input_ids"], "label": 0.0} for it in items], 0)
    b = collate([{"input_ids": it["input_ids_b"], "label": 0.0} for it in items], 0)
    return a, b, collate(items, 0)


def test_pairs_encoded_apart_become_two_stacked_halves(tokenizer):
    examples = [Example("a cat sat", "the dog ran far", 1.0), Example("hi", "yo", 2.0)]
    items = encode(examples, tokenizer, 16, separate=True)
    assert set(items[0]) == {"input_ids", "input_ids_b", "label"}
    batch = collate(items, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 4 and batch["labels"].tolist() == [1.0, 2.0] and bool(batch["pairs"])
    joint = encode(examples, tokenizer, 16)  # the cross-encoder layout is unchanged
    assert "input_ids_b" not in joint[0] and collate(joint, 0)["input_ids"].shape[0] == 2


@pytest.mark.parametrize("num_labels, classifier", [(1, "cosine"), (2, "cosine"), (3, "concat")])
def test_bi_logits_compare_each_side_encoded_alone(num_labels, classifier):
    model = tiny_model(num_labels=num_labels, head="bi", pair_classifier=classifier, label_range=[0.0, 5.0])
    a, b, stacked = pair_batch()
    keys = ("input_ids", "attention_mask", "token_type_ids")
    with torch.no_grad():
        u, _ = model.auxprune.encode(**{k: a[k] for k in keys})
        v, _ = model.auxprune.encode(**{k: b[k] for k in keys})
        out = model(**{k: stacked[k] for k in keys})
    # Padding each side to the longer one changes nothing: the embeddings are those of each side alone.
    assert torch.allclose(out.embeddings, torch.cat([u, v]), atol=1e-5)
    cosine = F.cosine_similarity(u, v, dim=-1)
    if num_labels == 1:
        assert torch.allclose(out.logits[:, 0], cosine, atol=1e-5)
        assert torch.allclose(model.to_label_units(out.logits)[:, 0], 5 * cosine, atol=1e-5)
        # The loss reads the label in cosine units: label 5 is cosine 1.
        assert torch.isclose(model.task_loss(out.logits, 5 * cosine), torch.tensor(0.0), atol=1e-10)
    elif classifier == "cosine":
        head = model.classifier
        assert torch.allclose(out.logits[:, 1] - out.logits[:, 0], head.scale * (cosine - head.threshold), atol=1e-5)
    else:
        assert out.logits.shape == (3, 3)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("num_labels, classifier", [(1, "cosine"), (2, "cosine"), (2, "concat")])
def test_cut_bi_encoder_computes_what_the_gated_one_did(num_labels, classifier, architecture):
    model = tiny_model(num_labels=num_labels, head="bi", pair_classifier=classifier, label_range=[1.0, 5.0],
                       **ARCHITECTURES[architecture])
    masks = sample_masks(model)  # fewer heads, FFN units and hidden dims, a removed FFN block
    _, _, stacked = pair_batch()
    keys = ("input_ids", "attention_mask", "token_type_ids")
    small = cut(model, masks)
    assert small.config.head == "bi" and small.config.label_range == [1.0, 5.0]
    with torch.no_grad():
        gated = model(**{k: stacked[k] for k in keys}, gates=masks.as_gates()).logits
        assert torch.allclose(small(**{k: stacked[k] for k in keys}).logits, gated, atol=1e-5)


@pytest.fixture(scope="module")
def bi_run(tiny_bert, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bi") / "stsb"
    code = main(["prune", "--model", str(tiny_bert), "--task", "glue/stsb", "--data-dir", str(data_dir),
                 "--sparsity", "0.5", "--max-train-examples", "48", "--seed", "3", "--output", str(out),
                 "--set", "model.head=bi", "--set", "model.pooling=mean", *FAST])
    assert code == 0
    return out


def test_bi_run_reports_its_head_and_saves_both_layouts(bi_run):
    report = json.loads((bi_run / "report.json").read_text())
    assert report["head"]["head"] == "bi" and report["head"]["why"] == "model.head=bi"
    assert report["head"]["label_range"][0] >= 0 and report["head"]["label_range"][1] <= 5
    assert "embedding" in {k[5:] for line in (bi_run / "log.jsonl").read_text().splitlines()
                           for k in json.loads(line) if k.startswith("loss_")}
    model_dir = bi_run / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["head"] == "bi" and config["auto_map"]["AutoModel"].endswith("AuxpruneModel")
    modules = json.loads((model_dir / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and pooling["word_embedding_dimension"] == config["hidden_size"]
    card = (model_dir / "README.md").read_text()
    assert "pipeline_tag: sentence-similarity" in card and "SentenceTransformer(" in card


def test_sentence_transformers_loads_the_folder_and_agrees_with_embed(bi_run, tmp_path):
    import sentence_transformers  # a test dependency: the folder must load with the real package
    texts = ["a cat sat on the mat", "dogs run", "the weather is fine today."]
    st = sentence_transformers.SentenceTransformer(str(bi_run / "model"), device="cpu", trust_remote_code=True)
    expected = st.encode(texts, convert_to_numpy=True)
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n\n")
    assert main(["embed", str(bi_run), str(source), "--output", str(tmp_path / "e.npy")]) == 0
    got = np.load(tmp_path / "e.npy")
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"body": t}) + "\n" for t in texts))
    assert main(["embed", str(bi_run), str(jsonl), "--field", "body", "--output", str(tmp_path / "e.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts and np.abs(np.array([r["embedding"] for r in rows]) - got).max() < 1e-5


def test_predict_gives_the_pair_similarity(bi_run, capsys):
    import auxprune

    [result] = auxprune.predict(str(bi_run), ["a cat sat"], pairs=["a cat sat down"])
    low, high = json.loads((bi_run / "model" / "config.json").read_text())["label_range"]
    assert -1 <= result["cosine"] <= 1 and result["value"] == pytest.approx(low + (high - low) * result["cosine"], abs=1e-5)
    assert main(["predict", str(bi_run), "a cat sat", "a cat sat down", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cosine"] == pytest.approx(result["cosine"], abs=1e-6)
    assert main(["predict", str(bi_run), "a cat sat"]) == 2  # one text: a bi-encoder compares two
    assert "auxprune embed" in capsys.readouterr().err


def test_eval_recomputes_the_reported_metrics(bi_run, data_dir, capsys):
    import auxprune
    from scipy.stats import pearsonr

    from auxprune.data.tasks import load_task

    assert main(["eval", str(bi_run), "--data-dir", str(data_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # eval reads the whole dev set (the run used its first 40): the same number as scoring each pair
    # with predict, which encodes the two sides its own way.
    dev = load_task("glue/stsb", data_dir).dev
    values = [r["value"] for r in auxprune.predict(str(bi_run), [e.text_a for e in dev], pairs=[e.text_b for e in dev])]
    assert result["dev_examples"] == len(dev) > 40
    assert result["metrics"]["pearson"] == pytest.approx(pearsonr(values, [e.label for e in dev])[0], abs=1e-5)
    assert main(["inspect", str(bi_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["head"] == "bi"


def test_onnx_export_of_the_embedding_model(bi_run, tmp_path, capsys):
    from auxprune.embed import embed
    from auxprune.export import ort_session
    from auxprune.model.loading import load

    out = tmp_path / "bi.onnx"
    assert main(["export", str(bi_run), "--onnx", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output"] == "sentence_embedding" and result["max_abs_diff"] < 1e-4
    model, tokenizer = load(bi_run)
    enc = tokenizer(["a cat sat", "dogs"], padding=True, return_tensors="np", return_token_type_ids=True)
    got = ort_session(out).run(None, {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})[0]
    assert np.abs(got - embed((model, tokenizer), ["a cat sat", "dogs"])).max() < 1e-4
    assert np.abs(embed(str(out), ["a cat sat", "dogs"]) - got).max() < 1e-6  # embed runs the file too


def test_onnx_files_of_a_bi_encoder_evaluate_predict_and_quantize(bi_run, data_dir, tmp_path, capsys):
    """The graph gives embeddings; eval and predict apply the pair head saved in the file, so the
    dev metric of what ships (fp32 or int8) is measured, and int8's check compares real dev pairs."""
    import auxprune

    fp32, int8 = tmp_path / "bi.onnx", tmp_path / "bi.int8.onnx"
    assert main(["export", str(bi_run), "--onnx", str(fp32)]) == 0
    capsys.readouterr()
    assert main(["export", str(bi_run), "--onnx", str(int8), "--int8", "--data-dir", str(data_dir), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["check"]
    assert check["inputs"].startswith("glue/stsb dev") and check["examples"] == 256  # pairs, not sides
    assert 0 < check["max_abs_embedding_diff"] < 0.2 and check["pearson"] > 0.95
    metrics = {}
    for name in (bi_run, fp32, int8):
        assert main(["eval", str(name), "--data-dir", str(data_dir), "--json"]) == 0
        metrics[name] = json.loads(capsys.readouterr().out)["metrics"]["pearson"]
    assert metrics[fp32] == pytest.approx(metrics[bi_run], abs=1e-5)
    assert abs(metrics[int8] - metrics[bi_run]) < 0.05
    texts, pairs = ["a cat sat", "dogs run"], ["a cat sat down", "the sky is blue"]
    for folder_result, file_result in zip(auxprune.predict(str(bi_run), texts, pairs=pairs),
                                          auxprune.predict(str(fp32), texts, pairs=pairs)):
        assert file_result["cosine"] == pytest.approx(folder_result["cosine"], abs=1e-5)
        assert file_result["value"] == pytest.approx(folder_result["value"], abs=1e-4)


def test_bad_bi_encoder_input_is_one_line(tiny_bert, data_dir, bi_run, tmp_path, capsys):
    base = ["prune", "--model", str(tiny_bert), "--data-dir", str(data_dir), "--sparsity", "0.5",
            "--max-train-examples", "48", *FAST]
    assert main([*base, "--task", "glue/sst2", "--output", str(tmp_path / "a"), "--set", "model.head=bi"]) == 2
    assert "one text per example" in capsys.readouterr().err and not (tmp_path / "a").exists()
    # A cross-encoder run asked to reuse a bi-encoder teacher.
    assert main([*base, "--task", "glue/stsb", "--output", str(tmp_path / "b"), "--set", "model.head=cross",
                 "--set", f"teacher.path={bi_run / 'teacher'}"]) == 2
    err = capsys.readouterr().err
    assert "bi-encoder" in err and "model.head=bi" in err and len(err.strip().splitlines()) == 1
    for bad, expected in ((tmp_path / "x.csv", "expected .txt"), (tmp_path / "missing.txt", "file not found")):
        if bad.suffix == ".csv":
            bad.write_text("a\n")
        assert main(["embed", str(bi_run), str(bad), "--output", str(tmp_path / "o.npy")]) == 2
        assert expected in capsys.readouterr().err
    lines = tmp_path / "t.jsonl"
    lines.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    assert main(["embed", str(bi_run), str(lines), "--output", str(tmp_path / "o.npy")]) == 2
    assert f"{lines}:2" in capsys.readouterr().err and not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("classifier", ["cosine", "concat"])
def test_onnx_file_of_a_pair_classifier(classifier, tokenizer, data_dir, tmp_path, capsys):
    """The cosine classifier's learned scale and threshold travel in the file, so its ONNX eval is the
    folder's; the concat classifier reads unnormalized embeddings, so its file gives embeddings only."""
    from auxprune.embed import embed
    from auxprune.output import save_model

    model = tiny_model(num_labels=2, head="bi", pair_classifier=classifier, task="glue/mrpc")
    if classifier == "cosine":
        with torch.no_grad():
            model.classifier.scale.fill_(7.0)
            model.classifier.threshold.fill_(0.3)
    save_model(model, tokenizer, tmp_path / "model")
    out = tmp_path / "mrpc.onnx"
    assert main(["export", str(tmp_path / "model"), "--onnx", str(out)]) == 0
    capsys.readouterr()
    if classifier == "concat":
        assert main(["eval", str(out), "--data-dir", str(data_dir)]) == 2
        err = capsys.readouterr().err
        assert "concat" in err and "model folder" in err and len(err.strip().splitlines()) == 1
        assert np.abs(embed(str(out), ["a cat"]) - embed(str(tmp_path / "model"), ["a cat"])).max() < 1e-4
        # int8 too: its check compares the embeddings, all the file gives.
        assert main(["export", str(tmp_path / "model"), "--onnx", str(tmp_path / "q.onnx"), "--int8",
                     "--data-dir", str(data_dir)]) == 0
        printed = capsys.readouterr().out
        assert "max |embedding diff|" in printed and "logit" not in printed and (tmp_path / "q.onnx").is_file()
        return
    results = []
    for name in (tmp_path / "model", out):
        assert main(["eval", str(name), "--data-dir", str(data_dir), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out)["metrics"])
    assert results[1] == pytest.approx(results[0], abs=1e-6)
    assert 0 < results[0]["accuracy"] < 1


def test_bench_times_a_bi_encoder_as_it_is_used(bi_run, capsys):
    """One text per row (batch 1 too), the embeddings its ONNX graph gives, in every runtime."""
    assert main(["bench", str(bi_run), "--runtime", "all", "--batch-size", "1", "--seq-len", "16", "--threads", "1",
                 "--warmup", "0", "--iterations", "1", "--min-time", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["runtime"] for r in rows] == ["torch", "onnxruntime", "onnxruntime-int8"]
    assert all(r["batch_size"] == 1 and r["pruned"]["latency_ms_p50"] > 0 for r in rows)
