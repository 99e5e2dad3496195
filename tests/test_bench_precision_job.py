"""The whole-job precision benchmark's table (bench/precision_job.py): bf16 beside fp32 of the same seed, the
time ratio, the reference cell from bi_recipe.json and the means. No training."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cell(precision: str, seed: int, pruned: float, total: float) -> dict:
    return {"task": "glue/mrpc", "sparsity": 0.9, "precision": precision, "seed": seed, "metric_name": "accuracy",
            "teacher": 0.78, "pruned": pruned, "timing_s": {"teacher": 10.0, "prune": total - 20, "finetune": 10.0,
                                                            "total": total}}


def test_table_pairs_precisions_of_a_seed_and_means_each(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import precision_job

    records = [cell("bf16", 1, 0.73, 400.0), cell("fp32", 1, 0.75, 1000.0), cell("bf16", 2, 0.77, 500.0)]
    reference = {("glue/mrpc", 0.9, 2): {"task": "glue/mrpc", "sparsity": 0.9, "seed": 2, "teacher": 0.79, "pruned": 0.76}}
    lines = precision_job.table(records, reference).splitlines()
    rows = [line for line in lines if line.startswith("| glue/mrpc")]
    # seed 1: fp32 first, then bf16 with its time against fp32's; seed 2: bf16, then the recorded fp32 cell
    assert [r.split(" | ")[3] for r in rows] == ["fp32", "bf16", "bf16", "fp32, bi_recipe.json (another machine)"]
    assert rows[1].endswith("| 0.40x |") and rows[2].endswith("|  |")
    mean = next(line for line in lines if line.startswith("- glue/mrpc 0.9"))
    assert "bf16 75.0 (2 seeds)" in mean and "fp32 here 75.0 (1 seed)" in mean and "fp32 bi_recipe.json 76.0 (1 seed)" in mean
