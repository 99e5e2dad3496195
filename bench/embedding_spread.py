"""Does a pruned bi-encoder still tell sentences apart? The spread of its sentence embeddings on dev.

A bi-encoder that maps every input to (nearly) the same vector scores by accident, if at all: its cosine
similarities are almost constant, so a threshold or a correlation rests on tiny differences. This embeds the
first `--sentences` distinct first-side sentences of a task's dev set with each run's model (eval mode, as it
is used) and records the mean cosine between different sentences (1.0: collapsed; a healthy sentence encoder
is far below) and its 5th-95th percentile range, beside the same for the dense teacher it was pruned from
(its own `teacher/`, or the `teacher.path` it loaded) when that folder is there. Found on MPNet-base pruned with the hidden family (README, the size-matched section).

    python bench/embedding_spread.py RUN_DIR [RUN_DIR ...]     # rows into bench/results/embedding_spread.json
    python bench/embedding_spread.py --table
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from results_file import add_record, display, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "embedding_spread.json"
DATA = ROOT.parent / "shared" / "data"


def dev_sentences(task: str, count: int, data_dir: Path = DATA) -> list[str]:
    from auxprune.baselines import distinct_first_sentences
    from auxprune.data.tasks import load_task

    return distinct_first_sentences(load_task(task, data_dir).dev, count)


def spread(model_dir: Path, texts: list[str]) -> dict:
    """Mean, 5th and 95th percentile of the cosine between the embeddings of different texts (the run's own
    check, `report.json` `embedding_spread`, gives the mean)."""
    import torch

    from auxprune.baselines import off_diagonal_cosines
    from auxprune.embed import embed

    off_diagonal = off_diagonal_cosines(torch.from_numpy(embed(model_dir, texts))).numpy()
    return {"mean_cosine": round(float(off_diagonal.mean()), 4),
            "p05": round(float(np.percentile(off_diagonal, 5)), 4), "p95": round(float(np.percentile(off_diagonal, 95)), 4)}


def measure(run_dir: Path, count: int, data_dir: Path = DATA) -> dict:
    if not (run_dir / "report.json").is_file():
        sys.exit(f"embedding_spread: {display(run_dir)} has no report.json: give the folder of a finished run")
    report = json.loads((run_dir / "report.json").read_text())
    if report.get("head", {}).get("head") != "bi":
        sys.exit(f"embedding_spread: {display(run_dir)} is not a bi-encoder run (report.json head: "
                 f"{report.get('head', {}).get('head')!r})")
    texts = dev_sentences(report["task"], count, data_dir)
    primary = report["metrics"]["primary"]
    row = {"run_dir": display(run_dir), "task": report["task"], "sentences": len(texts),
           "hidden_kept": report["structure"]["hidden_kept"], "families": report["config"]["prune"]["families"],
           "pruned_metric": report["metrics"]["pruned"][primary], "metric_name": primary,
           "pruned": spread(run_dir / "model", texts)}
    teacher = next((t for t in (run_dir / "teacher", ROOT / (report["config"]["teacher"].get("path") or "-"))
                    if (t / "config.json").is_file()), None)  # its own, or the one it pruned (teacher.path)
    if teacher is not None:
        row["teacher"] = spread(teacher, texts)
    return row


def table(records: list[dict]) -> str:
    lines = ["| run | task | hidden kept | pruned dev metric | pruned: mean cosine (5th-95th pct) | teacher: mean cosine |",
             "|---|---|---|---|---|---|"]
    for r in records:
        p, t = r["pruned"], r.get("teacher")
        teacher = f"{t['mean_cosine']:.3f}" if t else ""
        lines.append(f"| {Path(r['run_dir']).name} | {r['task']} | {r['hidden_kept']} | {r['metric_name']} "
                     f"{100 * r['pruned_metric']:.1f} | {p['mean_cosine']:.3f} ({p['p05']:.3f}-{p['p95']:.3f}) | {teacher} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders of bi-encoder runs (report.json, model/)")
    parser.add_argument("--sentences", type=int, default=64, help="distinct dev sentences to embed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="print the README table, measure nothing")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text())["records"] if RESULTS.is_file() else []))
        return
    import torch

    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/embedding_spread.py", *sys.argv[1:]])
    for run in args.runs:
        row = measure(run, args.sentences)
        add_record(RESULTS, {**row, "command": command}, command, lambda r: (r["run_dir"], r["sentences"]),
                   {"protocol": "the first distinct first-side dev sentences of the run's task, embedded in eval mode "
                                "(auxprune.embed, unit length); off-diagonal cosines", "machine": machine()})
        print(f"[done] {row['run_dir']}: pruned mean cosine {row['pruned']['mean_cosine']:.3f}"
              + (f", teacher {row['teacher']['mean_cosine']:.3f}" if "teacher" in row else ""), flush=True)


if __name__ == "__main__":
    main()
