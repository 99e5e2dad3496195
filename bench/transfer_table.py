"""The README table of bench/results/transfer_limited_data.json: mean +- std over seeds per target,
sparsity and method, the dense teacher without transfer (the ambition: pruned with transfer at least
as good), and the gain of `transfer` over `baseline` on the seeds both have, against the issue's
targets, over the issue's seeds (1-3). Seeds beyond those get a second table: each method measured
on them against `baseline` on every seed both have.

    python bench/transfer_table.py
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_limited_data.json"
METHODS = ["baseline", "aux_then_prune", "multitask", "transfer"]  # the issue's; other settings tried follow
TARGET_GAIN = {"glue/rte": 4.0, "glue/mrpc": 2.0, "glue/stsb": 0.5}  # points of the primary metric
PROTOCOL_SEEDS = {1, 2, 3}  # the seeds the targets are stated on


def cell(points: list[float]) -> str:
    if not points:
        return "-"
    if len(points) == 1:
        return f"{points[0]:.1f} (1 seed)"
    return f"{statistics.mean(points):.1f} +- {statistics.stdev(points):.1f} ({len(points)} seeds)"


def scores_by_seed(records: list[dict]) -> dict[tuple, dict[int, float]]:
    """(target, sparsity, method) -> {seed: primary metric x 100}."""
    by_seed: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in records:
        by_seed[(r["target"], r["sparsity"], r["method"])][r["seed"]] = 100 * r["metric"]
    return by_seed


def paired(by_seed: dict[tuple, dict[int, float]], target: str, sparsity: float,
           method: str = "transfer") -> tuple[list[int], dict[int, float], dict[int, float]]:
    """The seeds both `method` and baseline have, and their scores (unpaired means would mix seeds)."""
    base, best = by_seed.get((target, sparsity, "baseline"), {}), by_seed.get((target, sparsity, method), {})
    return sorted(base.keys() & best.keys()), base, best


def gain(by_seed: dict[tuple, dict[int, float]], target: str, sparsity: float, method: str = "transfer") -> str:
    """Mean of `method` - baseline over the seeds both have."""
    seeds, base, best = paired(by_seed, target, sparsity, method)
    if not seeds:
        return "-"
    text = f"{statistics.mean(best[s] - base[s] for s in seeds):+.1f} ({len(seeds)} seed{'s' * (len(seeds) > 1)})"
    if sparsity == 0.9:
        text += f", target >= +{TARGET_GAIN[target]:.1f}"
    return text


def table(records: list[dict]) -> str:
    """The issue's table: every method, over the protocol's seeds only."""
    records = [r for r in records if r["seed"] in PROTOCOL_SEEDS]
    by_seed = scores_by_seed(records)
    dense: dict[str, dict[int, float]] = defaultdict(dict)
    names = {}
    for r in records:
        if r["method"] in ("baseline", "multitask"):  # these start from the target-only dense teacher
            dense[r["target"]][r["seed"]] = 100 * r["teacher_metric"]
        names[r["target"]] = r["metric_name"]
    tried = sorted({m for _, _, m in by_seed} - set(METHODS))
    methods = METHODS + tried
    lines = ["| target (metric x 100) | sparsity | dense, no transfer | " + " | ".join(methods)
             + "".join(f" | {m} - baseline" for m in ["transfer", *tried]) + " |",
             "|---" * (len(methods) + 4 + len(tried)) + "|"]
    for target, sparsity in sorted({(t, s) for t, s, _ in by_seed}):
        values = [cell([v for _, v in sorted(by_seed.get((target, sparsity, m), {}).items())]) for m in methods]
        seeds = by_seed.get((target, sparsity, "baseline"), {}).keys() or dense[target].keys()  # this row's seeds
        teacher = cell([dense[target][s] for s in sorted(seeds) if s in dense[target]])
        gains = [gain(by_seed, target, sparsity, m) for m in ["transfer", *tried]]
        lines.append(f"| {target} ({names[target]}) | {sparsity} | {teacher} | " + " | ".join(values + gains) + " |")
    return "\n".join(lines)


def all_seeds_table(records: list[dict]) -> str:
    """Each method against `baseline` on every seed both have, per target and sparsity, for the methods
    measured on a seed outside the protocol's; empty when there is none."""
    by_seed = scores_by_seed(records)
    lines = []
    for target, sparsity, method in sorted(by_seed):
        seeds, base, scores = paired(by_seed, target, sparsity, method)
        if method == "baseline" or set(seeds) <= PROTOCOL_SEEDS:
            continue
        gains = [scores[s] - base[s] for s in seeds]
        spread = f" +- {statistics.stdev(gains):.1f}" if len(gains) > 1 else ""
        lines.append(f"| {target} | {sparsity} | {method} | {', '.join(map(str, seeds))} | {cell([base[s] for s in seeds])} | "
                     f"{cell([scores[s] for s in seeds])} | {statistics.mean(gains):+.1f}{spread} | "
                     + " / ".join(f"{g:+.1f}" for g in gains) + " |")
    if not lines:
        return ""
    return "\n".join(["| target | sparsity | method | seeds | baseline | method's score | method - baseline | per seed |",
                      "|---|---|---|---|---|---|---|---|", *lines])


if __name__ == "__main__":
    records = json.loads(RESULTS.read_text(encoding="utf-8"))["records"]
    print(table(records))
    extra = all_seeds_table(records)
    if extra:
        print("\nAll seeds, against baseline:\n\n" + extra)
