"""The README table of bench/results/transfer_limited_data.json: mean +- std over seeds per target,
sparsity and method, the gain over `baseline`, and the issue's targets for `transfer`.

    python bench/transfer_table.py
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_limited_data.json"
METHODS = ["baseline", "aux_then_prune", "multitask", "transfer"]
TARGET_GAIN = {"glue/rte": 4.0, "glue/mrpc": 2.0, "glue/stsb": 0.5}  # points of the primary metric


def cell(points: list[float]) -> str:
    if not points:
        return "-"
    if len(points) == 1:
        return f"{points[0]:.1f} (1 seed)"
    return f"{statistics.mean(points):.1f} +- {statistics.stdev(points):.1f} ({len(points)} seeds)"


def table(records: list[dict]) -> str:
    points: dict[tuple, list[float]] = defaultdict(list)
    names = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        points[(r["target"], r["sparsity"], r["method"])].append(100 * r["metric"])
        names[r["target"]] = r["metric_name"]
    lines = ["| target (metric x 100) | sparsity | " + " | ".join(METHODS) + " | transfer - baseline (target) |",
             "|---" * (len(METHODS) + 3) + "|"]
    for target, sparsity in sorted({(t, s) for t, s, _ in points}):
        values = {m: points.get((target, sparsity, m), []) for m in METHODS}
        base, best = values["baseline"], values["transfer"]
        gain = "-"
        if base and best:
            gain = f"{statistics.mean(best) - statistics.mean(base):+.1f}"
            if sparsity == 0.9:
                gain += f" (>= +{TARGET_GAIN[target]:.1f})"
        lines.append(f"| {target} ({names[target]}) | {sparsity} | " + " | ".join(cell(values[m]) for m in METHODS)
                     + f" | {gain} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(RESULTS.read_text(encoding="utf-8"))["records"]))
