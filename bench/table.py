"""Print the README's markdown tables from the JSON files in bench/results/.

    python bench/table.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def prune_table() -> str:
    data = json.loads((RESULTS / "prune_limited_data.json").read_text())
    commands = dict.fromkeys(r["command"] for r in data["results"])  # in order, each once
    lines = [*(f"Command: `{c}`" for c in commands), "",
             "| task | target | measured sparsity | metric | constant | dense teacher | pruned | retained | encoder params | latency speed-up | teacher s | prune s | finetune s | total s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["results"]:
        m = r["primary_metric"]
        extra = f" (F1 {r['teacher']['f1']:.3f} / {r['pruned']['f1']:.3f}, constant {r['constant_baseline']['f1']:.3f})" if "f1" in r["pruned"] else ""
        t = r["timing_s"]
        lines.append(
            f"| {r['task']} | {r['target_sparsity']} | {r['sparsity']:.4f} | {m}{extra} | {r['constant_baseline'][m]:.3f} | "
            f"{r['teacher'][m]:.3f} | {r['pruned'][m]:.3f} | {100 * r['retained']:.1f}% | "
            f"{r['params']['encoder_kept']:,} / {r['params']['encoder_total']:,} | {r['speed']['speedup']}x | "
            f"{t.get('teacher', 0):.0f} | {t['prune']:.0f} | {t['finetune']:.0f} | {t['total']:.0f} |")
    return "\n".join(lines)


def speed_table() -> str:
    path = RESULTS / "speed.json"
    if not path.is_file():
        return ""
    data = json.loads(path.read_text())
    lines = [f"Command: `{data['command']}`", "",
             "| run | runtime | batch x seq | pruned p50 ms | dense p50 ms | speed-up | FLOPs speed-up |",
             "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lines.append(f"| {Path(r.get('run', r.get('model', '?'))).name} | {r['runtime']} | {r['batch_size']} x {r['seq_len']} | "
                     f"{r['pruned']['latency_ms_p50']:.1f} | {r['baseline']['latency_ms_p50']:.1f} | "
                     f"{r['speedup']:.2f}x | {r['flops_speedup']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(prune_table())
    print()
    print(speed_table())
