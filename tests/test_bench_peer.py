"""bench/peer_sentence_transformers.py: the peer tool's training rows and table (its training is the library's)."""

from __future__ import annotations

import json
from pathlib import Path

from auxprune.data.tasks import Example, TaskData, TaskSpec

ROOT = Path(__file__).resolve().parents[1]


def script(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import peer_sentence_transformers

    monkeypatch.setattr(peer_sentence_transformers, "RESULTS", tmp_path / "peer.json")
    return peer_sentence_transformers


def test_training_rows_scale_scores_to_the_cosine_range_and_keep_classes(monkeypatch, tmp_path):
    peer = script(monkeypatch, tmp_path)
    stsb = TaskData(TaskSpec("glue/stsb", "regression", (), ("pearson",), "pearson"),
                    [Example("a", "b", 0.0), Example("c", "d", 2.5), Example("e", "f", 5.0)], [])
    rows = peer.training_rows(stsb)
    assert rows == {"sentence1": ["a", "c", "e"], "sentence2": ["b", "d", "f"], "label": [0.0, 0.5, 1.0]}
    assert peer.loss_name(stsb) == "CosineSimilarityLoss"
    mrpc = TaskData(TaskSpec("glue/mrpc", "classification", ("0", "1"), ("accuracy",), "accuracy"),
                    [Example("a", "b", 1), Example("c", "d", 0)], [])
    assert peer.training_rows(mrpc)["label"] == [1, 0] and peer.loss_name(mrpc) == "OnlineContrastiveLoss"
    # RTE's class 0 (entailment) is the one the untrained model puts closer: it is the contrastive loss's "similar"
    assert peer.similar_class({"class1_above": False}) == 0 and peer.similar_class({"class1_above": True}) == 1
    assert peer.training_rows(mrpc, similar_class=0)["label"] == [0, 1]


def test_table_averages_seeds_beside_the_untrained_score(monkeypatch, tmp_path):
    peer = script(monkeypatch, tmp_path)
    records = [{"task": "glue/rte", "seed": seed, "metric_name": "accuracy", "loss": "OnlineContrastiveLoss",
                "fine_tuned": tuned, "untrained": 0.625, "train_s": 100.0 + seed} for seed, tuned in ((2, 0.60), (1, 0.62))]
    (tmp_path / "peer.json").write_text(json.dumps({"records": records}))
    assert peer.scores("glue/rte") == [0.60, 0.62] and peer.scores("glue/stsb") == []
    lines = peer.table(peer.records()).splitlines()
    assert lines[2] == "| glue/rte (accuracy) | 1, 2 | 62.5 ± 0.0 | 61.0 ± 1.4 | OnlineContrastiveLoss | 102 |"
    assert len(lines) == 3  # no other task measured: no row
