"""The `auxprune` command end to end on a tiny random BERT and real GLUE files."""

from __future__ import annotations

import json

import pytest
import yaml

import auxprune
from auxprune.cli import main
from auxprune.sparsity import count_parameters
from conftest import write_tiny_mpnet

FAST = ["--set", "teacher.epochs=1", "--set", "prune.epochs=2", "--set", "finetune.epochs=1",
        "--set", "train.batch_size=8", "--set", "data.max_dev_examples=40", "--set", "model.max_seq_len=32",
        "--set", "train.min_epoch_examples=0"]


@pytest.fixture(scope="module")
def pruned_run(tiny_bert, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "rte"
    code = main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir),
                 "--sparsity", "0.5", "--max-train-examples", "48", "--seed", "3", "--output", str(out), *FAST])
    assert code == 0
    return out


def test_prune_writes_every_output(pruned_run):
    for name in ("model/config.json", "model/model.safetensors", "model/tokenizer.json", "report.json",
                 "structure.png", "log.jsonl", "config.yaml", "teacher/model.safetensors"):
        assert (pruned_run / name).is_file(), name
    report = json.loads((pruned_run / "report.json").read_text())
    assert report["status"] == "ok" and report["task"] == "glue/rte"
    # A 2-layer, 32-wide model moves in steps of a few points; the exact landing is tested on MiniLM.
    assert abs(report["sparsity"] - 0.5) <= 0.05
    assert set(report["metrics"]) >= {"teacher", "pruned"} and "accuracy" in report["metrics"]["pruned"]
    assert report["data"] == {"train_examples": 48, "dev_examples": 40, "train_available": 2490}
    assert set(report["timing"]) >= {"teacher", "prune", "finetune", "total"}
    assert report["peak_memory_mb"] > 100  # this process's peak: torch alone takes more
    # the cut model against the student as pruning left it, on the first dev batch
    assert 0 < report["cut_check"]["examples"] <= 40 and -1 <= report["cut_check"]["embedding_cosine_min"] <= 1
    assert report["config"]["seed"] == 3
    # A plain BERT folder (no sentence-transformers files): model.head=auto keeps the cross-encoder.
    assert report["head"]["head"] == "cross" and report["head"]["why"] == "not a sentence-embedding model"
    assert "embedding_spread" not in report  # a cross-encoder's pooled vector is not a sentence embedding
    phases = {json.loads(line)["phase"] for line in (pruned_run / "log.jsonl").read_text().splitlines()}
    assert phases == {"teacher", "prune", "finetune"}


def test_the_summary_says_the_peak_memory_and_leaves_it_out_when_unknown(pruned_run, capsys):
    from auxprune.summary import print_prune_summary

    report = json.loads((pruned_run / "report.json").read_text())
    print_prune_summary(report, pruned_run)
    assert f"peak memory {report['peak_memory_mb'] / 1024:.1f} GB" in " ".join(capsys.readouterr().out.split())
    print_prune_summary({**report, "peak_memory_mb": None}, pruned_run)  # Windows, or a report from before it
    assert "peak memory" not in capsys.readouterr().out


def test_report_counts_are_the_saved_models(pruned_run):
    import auxprune

    model, _ = auxprune.load(pruned_run)
    report = json.loads((pruned_run / "report.json").read_text())
    counts = count_parameters(model)
    assert report["params"]["encoder_kept"] == counts["encoder_kept"]
    assert report["params"]["total"] == counts["total"]
    assert report["sparsity"] == pytest.approx(1 - counts["encoder_kept"] / report["params"]["encoder_total"], abs=1e-5)
    layers = report["structure"]["layers"]
    assert [l["heads"] for l in layers] == model.config.layer_heads
    assert [l["ffn_units"] for l in layers] == model.config.layer_ffn


def test_config_yaml_reruns(pruned_run, tiny_bert, data_dir, tmp_path):
    config = yaml.safe_load((pruned_run / "config.yaml").read_text())
    assert config["prune"]["target_sparsity"] == 0.5 and config["data"]["max_train_examples"] == 48
    config["teacher"]["path"] = str(pruned_run / "teacher")  # reuse the teacher: faster
    (tmp_path / "again.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "again"
    assert main(["prune", "--config", str(tmp_path / "again.yaml"), "--output", str(out)]) == 0
    first = json.loads((pruned_run / "report.json").read_text())
    second = json.loads((out / "report.json").read_text())
    assert second["metrics"]["teacher"] == first["metrics"]["teacher"]


def test_eval_recomputes_metrics(pruned_run, data_dir, capsys):
    assert main(["eval", str(pruned_run), "--data-dir", str(data_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "glue/rte" and result["dev_examples"] == 277
    assert 0 <= result["metrics"]["accuracy"] <= 1
    # The very accuracy of the saved model on the full dev set, recomputed here another way: the
    # model's own predictions (auxprune.predict: its own tokenization and batching) against the gold labels.
    import auxprune
    from auxprune.data.tasks import load_task

    dev = load_task("glue/rte", data_dir).dev
    predicted = auxprune.predict(pruned_run, [e.text_a for e in dev], pairs=[e.text_b for e in dev])
    names = load_task("glue/rte", data_dir).spec.labels
    correct = sum(p["label"] == names[e.label] for p, e in zip(predicted, dev))
    assert result["metrics"]["accuracy"] == pytest.approx(correct / len(dev), abs=1e-9)


def test_inspect_shows_structure(pruned_run, capsys):
    assert main(["inspect", str(pruned_run / "model"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    report = json.loads((pruned_run / "report.json").read_text())
    assert info["sparsity"] == pytest.approx(report["sparsity"], abs=1e-5)
    assert main(["inspect", str(pruned_run)]) == 0
    assert "heads" in capsys.readouterr().out


def test_existing_output_is_not_overwritten(pruned_run, tiny_bert, data_dir, capsys):
    before = (pruned_run / "report.json").read_text()
    code = main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir),
                 "--output", str(pruned_run)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (pruned_run / "report.json").read_text() == before


@pytest.mark.parametrize("argv, message", [
    (["--sparsity", "1.2"], "prune.target_sparsity"),
    (["--task", "glue/nope"], "glue/nope"),
    (["--preset", "turbo"], "preset"),
    (["--set", "prune.families=[heads,layers]"], "families"),
    (["--set", "nonsense"], "key=value"),
    (["--speed-reference", "no/such/model", *FAST], "prune.speed_reference: no/such/model"),
])
def test_bad_options_are_one_line_errors(argv, message, tiny_bert, data_dir, tmp_path, capsys):
    code = main(["prune", "--model", str(tiny_bert), "--data-dir", str(data_dir), "--output", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # refused before anything is written


TINY_ENCODER = 13578  # encoder-layer parameters of the tiny BERT and the tiny MPNet (2 x (4288 + 2501))


def test_prune_to_a_parameter_count(tiny_bert, data_dir, tmp_path, capsys):
    out = tmp_path / "rte"
    assert main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir),
                 "--target-params", "6789", "--speed-reference", str(tiny_bert), "--max-train-examples", "48",
                 "--output", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == {"requested_params": 6789, "size_of": None, "encoder_total": TINY_ENCODER,
                                "target_sparsity": 0.5, "why": report["target"]["why"]}
    assert "6,789 of 13,578 encoder-layer parameters, target sparsity 0.5000" in report["target"]["why"]
    assert report["target_sparsity"] == 0.5 and abs(report["params"]["encoder_kept"] - 6789) <= 0.05 * TINY_ENCODER
    assert report["model"]["pooling"]["mode"] == "pooler" and "pooler weights" in report["model"]["pooling"]["why"]
    printed = capsys.readouterr().out
    assert "size: prune.target_params=6789" in printed and "pooling: pooler (" in printed
    # timed beside the model it was asked to be compared with, which it was not sized to
    reference = report["speed"]["reference"]
    assert reference["model"] == str(tiny_bert) and reference["sized_to"] is False and reference["latency_ms"] > 0
    assert f"speed beside {tiny_bert}" in printed
    card = (out / "model" / "README.md").read_text()
    assert f"Beside {tiny_bert} (timed on the same batch)" in card and "whose encoder size" not in card
    saved = yaml.safe_load((out / "config.yaml").read_text())["prune"]
    assert saved["target_params"] == 6789 and saved["target_sparsity"] == 0.5  # reruns to the same target


def test_prune_an_mpnet_to_the_size_of_another_run(pruned_run, data_dir, tmp_path, capsys):
    """A tiny MPNet end to end (gates, cut, fine-tune, save), to the encoder size of the pruned tiny BERT, and
    timed beside that model (another architecture and tokenizer)."""
    mpnet = tmp_path / "mpnet"
    write_tiny_mpnet(mpnet)
    kept = json.loads((pruned_run / "report.json").read_text())["params"]["encoder_kept"]
    out = tmp_path / "rte"
    assert main(["prune", "--model", str(mpnet), "--task", "glue/rte", "--data-dir", str(data_dir),
                 "--size-of", str(pruned_run), "--max-train-examples", "48", "--output", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    target = report["target"]
    assert (target["requested_params"], target["size_of"], target["encoder_total"]) == (kept, str(pruned_run), TINY_ENCODER)
    assert report["target_sparsity"] == pytest.approx(1 - kept / TINY_ENCODER)
    assert abs(report["params"]["encoder_kept"] - kept) <= 0.05 * TINY_ENCODER
    model, _ = auxprune.load(out)
    assert model.config.relative_attention_num_buckets == 32 and model.config.type_vocab_size == 0
    assert [len(ids) for ids in model.config.layer_head_ids] == model.config.layer_heads
    assert count_parameters(model)["encoder_kept"] == report["params"]["encoder_kept"]
    reference = report["speed"]["reference"]
    assert reference["model"] == str(pruned_run) and reference["latency_ms"] > 0 and reference["pruned_latency_ms"] > 0
    assert reference["sized_to"] is True
    assert reference["speedup"] == pytest.approx(reference["latency_ms"] / reference["pruned_latency_ms"], rel=0.02)
    assert "speed beside " in capsys.readouterr().out
    assert f"Beside {pruned_run}, whose encoder size" in (out / "model" / "README.md").read_text()


def test_the_cut_check_changes_nothing_the_run_computes(tiny_bert, data_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from auxprune import pipeline

    def run(out):
        assert main(["prune", "--model", str(tiny_bert), "--task", "glue/rte", "--data-dir", str(data_dir),
                     "--sparsity", "0.5", "--max-train-examples", "24", "--seed", "5", "--output", str(out), *FAST,
                     "--set", "data.max_dev_examples=16"]) == 0
        return load_file(out / "model" / "model.safetensors"), json.loads((out / "report.json").read_text())

    with_check, report = run(tmp_path / "with")
    assert "cut_check" in report
    monkeypatch.setattr(pipeline, "cut_agreement", lambda *args: None)
    without, _ = run(tmp_path / "without")
    assert with_check.keys() == without.keys()
    assert all(bool((with_check[k] == without[k]).all()) for k in with_check)  # bit for bit
