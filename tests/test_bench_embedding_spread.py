"""bench/embedding_spread.py's arithmetic: the off-diagonal cosine of unit embeddings, and its table row with
and without a teacher. No model: `auxprune.embed.embed` is replaced by fixed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_spread_is_one_for_collapsed_embeddings_and_low_for_orthogonal_ones(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import embedding_spread

    import auxprune.embed

    collapsed = np.tile(np.array([[0.6, 0.8, 0.0]], dtype=np.float32), (4, 1))
    monkeypatch.setattr(auxprune.embed, "embed", lambda model, texts: collapsed[:len(texts)])
    assert embedding_spread.spread(Path("m"), ["a", "b", "c", "d"]) == {"mean_cosine": 1.0, "p05": 1.0, "p95": 1.0}
    monkeypatch.setattr(auxprune.embed, "embed", lambda model, texts: np.eye(3, dtype=np.float32))
    assert embedding_spread.spread(Path("m"), ["a", "b", "c"])["mean_cosine"] == 0.0
    row = {"run_dir": "bench/work/x/run1", "task": "glue/stsb", "hidden_kept": 411, "metric_name": "pearson",
           "pruned_metric": -0.025, "pruned": {"mean_cosine": 1.0, "p05": 1.0, "p95": 1.0}}
    lines = embedding_spread.table([row, {**row, "teacher": {"mean_cosine": 0.093}}]).splitlines()
    assert lines[2] == "| run1 | glue/stsb | 411 | pearson -2.5 | 1.000 (1.000-1.000) |  |"
    assert lines[3].endswith("| 0.093 |") and len(lines[3].split("|")) == len(lines[0].split("|"))
