"""One `auxprune prune` run as a benchmark cell, shared by the resumable bench scripts.

`run_prune(out, command, threads, label)`:
- read: `out/report.json` with status "ok" is a cell finished in an earlier invocation: returned as it is,
  nothing run (wall None, ran False);
- resume: `out/checkpoints/` with entries is an interrupted run: `auxprune prune --resume OUT` continues
  it with its saved config;
- run: else `command` (`["auxprune", "prune", ...]`, as the results file records it) runs fresh, with
  `--set train.threads=N` when `threads` is given;
as `python -m auxprune.cli ...` (check=True), in an environment where AUXPRUNE_DATA_DIR defaults to
the shared data folder beside the repository and OMP_NUM_THREADS is `threads` when given. Returns
the run's report, its wall seconds (rounded to 0.1; a resumed run's own `timing.total`, since this
invocation saw only the rest; None when it finished earlier) and whether it ran now.

The keywords keep the scripts' own differences, each at its call site: how `--resume` names the folder
(`resume_as`, default str(out)), no `train.threads` flag (`train_threads=False`), the environment as
given (`env`), the working folder (`cwd`, default the repository). `label` names the cell in the
`[skip]` and `[run]` lines; without it, no `[skip]` line and `[run] auxprune ...`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The pruning schedule of the tables that grow over several sessions (bench/bi_encoder.py, learning_curve.py,
# small_data_default.py, size_matched.py): the quick preset's 6 pruning epochs (192 steps at 1,000 examples)
# until 2026-12-01, when bench/bi_recipe.py measured 12 better or level at every point it ran and the default
# moved to 12. Their remaining cells keep 6, so that each table stays one protocol; bi_recipe.json has the new default.
# Their pruning also keeps CoFi's view of an emptied sublayer (its LayerNorm still runs), the only one until
# 2026-12-07, when bench/empty_sublayers.py measured the cut model's view level or better and it became the default.
TABLE_VIEW = ["--set", "prune.skip_empty_sublayers=false"]
TABLE_SCHEDULE = ["--set", "prune.epochs=6", *TABLE_VIEW]
# Their precision, pinned: fp32, the default, in which every table was measured; written out so that a change of
# default, or `train.precision=auto` on a CPU that multiplies bf16, cannot move a cell out of its table's protocol.
TABLE_PRECISION = ["--set", "train.precision=fp32"]
# The --aux recipe's distillation weight on auxiliary inputs in which those tables' transfer cells were measured
# (1, the default until 2026-12-06): pinned for the same reason, so that their remaining cells keep the protocol
# whatever the default becomes (bench/small_data_coupling.py measures other weights).
TABLE_RECIPE = ["--set", "transfer.aux_distill_weight=1"]


def run_prune(out: Path, command: list[str], threads: int | None, label: str | None = None, *,
              resume_as: str | None = None, train_threads: bool = True, env: Mapping[str, str] | None = None,
              cwd: Path | None = ROOT) -> tuple[dict, float | None, bool]:
    """The cell's report, its wall seconds (None when it finished earlier) and whether it ran now (module docstring)."""
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report.get("status") == "ok":
        if label is not None:
            print(f"[skip] {label}: finished earlier", flush=True)
        return report, None, False
    resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if resume:  # interrupted earlier: continue from its newest checkpoint with its saved config
        argv = ["prune", "--resume", resume_as if resume_as is not None else str(out)]
    else:
        argv = command[1:] + (["--set", f"train.threads={threads}"] if threads and train_threads else [])
    print(f"[run] {label + ': ' if label is not None else ''}auxprune {shlex.join(argv)}", flush=True)
    if env is None:  # the shared data folder sits beside the repository unless AUXPRUNE_DATA_DIR says otherwise
        env = {**os.environ, "AUXPRUNE_DATA_DIR": os.environ.get("AUXPRUNE_DATA_DIR", str(ROOT.parent / "shared" / "data"))}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
    started = time.time()
    subprocess.run([sys.executable, "-m", "auxprune.cli", *argv], check=True, env=env, cwd=cwd)
    wall = time.time() - started
    report = json.loads(report_path.read_text())
    return report, round(report["timing"]["total"] if resume else wall, 1), True
