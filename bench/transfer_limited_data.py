"""Issue 3 benchmark: pruning with transfer from auxiliary tasks under limited target data.

MiniLM-L6, `quick` preset, target training set limited to 1,000 examples, full dev set. Pairs:
RTE with NLI (SNLI dev + SICK entailment + XNLI English dev), MRPC with Twitter URL, STS-B with
SICK relatedness. Methods:

- `baseline`: the engine alone (no auxiliary task), same target steps.
- `aux_then_prune`: one epoch on the auxiliary data, then the whole target run from that encoder
  (how=sequential, what=weights).
- `multitask`: joint, everything hard-shared (one model, one gate set, two heads), constant weight
  during pruning.
- `joint_decay`: an intermediate-task teacher (one epoch on the auxiliary data, then the target),
  then multitask pruning with a linearly decaying auxiliary weight.
- `joint_decay_kd`: `joint_decay`, and the teacher distilled on auxiliary inputs at every pruning
  step.
- `transfer`: `joint_decay_kd`, and the same distillation at every final fine-tuning step: the best
  setting measured, and the defaults `--aux` selects.

Every cell is its own run folder under bench/work/transfer/. Resumable: a cell already in the
results file is skipped (`--rerun` runs it again), a cell whose run folder has a finished report is
read, not re-run, and an interrupted one continues from its newest checkpoint. Methods without
auxiliary teacher training reuse one dense teacher per task and seed. Results:
bench/results/transfer_limited_data.json, a list of records {target, aux, sparsity, method, seed,
metric_name, metric, wall_s} with the command.

    python bench/transfer_limited_data.py --targets glue/stsb --methods baseline aux_then_prune multitask --seeds 1
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from auxprune.output import write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from prune_cell import TABLE_PRECISION, TABLE_SCHEDULE, run_prune  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# These runs measured the cross-encoder head; pinned since model.head=auto picks the bi-encoder for
# sentence-embedding models on pair tasks (bench/bi_encoder.py), so that rerunning a cell reproduces it.
CROSS = ["--set", "model.head=cross"]
RESULTS = ROOT / "bench" / "results" / "transfer_limited_data.json"
WORK = ROOT / "bench" / "work" / "transfer"

AUX = {
    "glue/rte": ["aux/snli_dev.tsv", "aux/sick_entailment.tsv", "aux/xnli_en_dev.tsv"],
    "glue/mrpc": ["aux/twitter_url_train.tsv"],
    "glue/stsb": ["aux/sick_relatedness.tsv"],
}
AUX_EXAMPLES = 20000  # in total per target, split evenly over its sources

# Each method: its --set overrides, its teacher, and the overrides that only shape that teacher.
# `dense`: one teacher per task and seed, fine-tuned on the target only. `aux`: one epoch on the
# auxiliary data, then the target (intermediate-task training); the student starts from its
# teacher, so this is also the sequential weight transfer. Both kinds are trained by the first
# cell that needs them and reused by the others, which then run with `teacher.path` and without
# the teacher-only overrides.
# The settings `joint_decay` and its refinements share; each adds how it distils on auxiliary inputs.
JOINT_DECAY = ["transfer.how=joint", "transfer.what=both", "transfer.share=hard", "transfer.teacher_aux_epochs=1",
               "transfer.when=linear_decay", "transfer.phases=[warmup,prune]"]
METHODS: dict[str, tuple[list[str], str, list[str]]] = {
    "baseline": ([], "dense", []),
    "aux_then_prune": (["transfer.how=sequential", "transfer.what=weights", "transfer.stage1_epochs=1"], "aux",
                       ["transfer.how=sequential", "transfer.what=weights", "transfer.stage1_epochs=1"]),
    "multitask": (["transfer.how=joint", "transfer.what=both", "transfer.share=hard", "transfer.when=constant",
                   "transfer.phases=[warmup,prune]", "transfer.teacher_aux_epochs=0", "transfer.aux_distill_weight=0"], "dense",
                  []),
    # Intermediate-task teacher, then multitask pruning with a decaying auxiliary weight.
    "joint_decay": (JOINT_DECAY + ["transfer.aux_distill_weight=0"], "aux", ["transfer.teacher_aux_epochs=1"]),
    # The same, and every pruning step also distils the teacher on an auxiliary batch (labels unused).
    "joint_decay_kd": (JOINT_DECAY + ["transfer.aux_distill_weight=1", "transfer.aux_distill_phases=[warmup,prune]"], "aux",
                       ["transfer.teacher_aux_epochs=1"]),
    # The same, and the final fine-tuning steps too (they otherwise see only the 1,000 target examples):
    # the best setting measured, and what `--aux` alone selects.
    "transfer": (JOINT_DECAY + ["transfer.aux_distill_weight=1", "transfer.aux_distill_phases=[warmup,prune,finetune]"], "aux",
                 ["transfer.teacher_aux_epochs=1"]),
    # `transfer` with the distillation weight `--aux` selects since 2026-12-06 (3, measured with the bi-encoder head
    # in bench/small_data_coupling.py): the check of that default on this cross-encoder table.
    "transfer_kd3": (JOINT_DECAY + ["transfer.aux_distill_weight=3", "transfer.aux_distill_phases=[warmup,prune,finetune]"],
                     "aux", ["transfer.teacher_aux_epochs=1"]),
}
# Methods were renamed as better settings took the name `transfer`. The records and the `--methods` of
# the commands in the results file were renamed with them, each step in order, from the names then to
# the names after.
RENAMED = [{"transfer": "joint_decay", "transfer_kd": "transfer"},
           {"transfer": "joint_decay_kd", "transfer_finetune_kd": "transfer"}]
TEACHER_RECIPES = {"dense": "target only (teacher.epochs of the preset)",
                   "aux": "1 epoch on the auxiliary data, then the target (teacher.epochs of the preset)"}


def teacher_dir(target: str, kind: str, seed: int) -> Path:
    return WORK / f"{target.split('/')[-1]}_{'' if kind == 'dense' else kind}teacher_seed{seed}"


def aux_sets(target: str) -> list[str]:
    sources = AUX[target]
    per_source = AUX_EXAMPLES // len(sources)
    sets = []
    for i, source in enumerate(sources):
        sets += ["--aux", source, "--set", f"transfer.aux.{i}.max_examples={per_source}"]
    return sets


def run_cell(target: str, sparsity: float, method: str, seed: int, examples: int,
             threads: int | None = None) -> tuple[dict, float | None]:
    """The cell's report and its wall time, None when it finished in an earlier invocation."""
    name = f"{target.split('/')[-1]}_{method}_s{sparsity}_seed{seed}"
    out = WORK / name
    overrides, kind, teacher_only = METHODS[method]
    teacher = teacher_dir(target, kind, seed)
    reuse = (teacher / "model.safetensors").is_file()
    if reuse:
        overrides = [o for o in overrides if o not in teacher_only]
    command = ["auxprune", "prune", "--task", target, "--sparsity", str(sparsity), "--max-train-examples", str(examples),
               "--seed", str(seed), "--output", str(out), "--overwrite", *CROSS, *TABLE_SCHEDULE, *TABLE_PRECISION]
    if any(o.startswith("transfer.") for o in overrides):
        command += aux_sets(target)
    for setting in overrides:
        command += ["--set", setting]
    if reuse:
        command += ["--set", f"teacher.path={teacher}"]
    # absolute paths, threads through OMP_NUM_THREADS only (no train.threads), the caller's working folder
    report, wall, ran = run_prune(out, command, threads, name, train_threads=False, cwd=None)
    if ran and (out / "teacher").is_dir() and not teacher.exists():  # this cell trained the teacher: share it
        os.replace(out / "teacher", teacher)
    return report, wall


def record(target: str, method: str, seed: int, report: dict, wall: float) -> dict:
    primary = report["metrics"]["primary"]
    return {"target": target, "aux": AUX[target] if method != "baseline" else [], "sparsity": report["target_sparsity"],
            "measured_sparsity": report["sparsity"], "method": method, "seed": seed, "metric_name": primary,
            "metric": report["metrics"]["pruned"][primary], "teacher_metric": report["metrics"]["teacher"][primary],
            "wall_s": wall, "teacher": TEACHER_RECIPES[METHODS[method][1]], "transfer": report.get("transfer")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=list(AUX))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.9])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--rerun", action="store_true", help="run cells again even when the results file has them "
                        "(a finished run folder is still read, not re-run)")
    parser.add_argument("--threads", type=int, help="torch threads per cell (e.g. 1 to run two runners side by side "
                        "on disjoint targets); all cores when empty")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/transfer_limited_data.py", *sys.argv[1:]])
    WORK.mkdir(parents=True, exist_ok=True)
    recorded = set() if args.rerun else recorded_cells()
    for seed in args.seeds:
        for target in args.targets:
            for sparsity in args.sparsities:
                for method in args.methods:
                    if (target, sparsity, method, seed) in recorded:
                        print(f"[skip] {target} {method} s{sparsity} seed {seed}: in {RESULTS.relative_to(ROOT)}",
                              flush=True)
                        continue
                    report, wall = run_cell(target, sparsity, method, seed, args.examples, args.threads)
                    finished_earlier = wall is None
                    r = record(target, method, seed, report, report["timing"]["total"] if finished_earlier else wall)
                    if not finished_earlier:  # this invocation's threads say nothing of a cell run before
                        r["threads"] = args.threads or torch.get_num_threads()
                    r = write(r, command, keep_existing=finished_earlier)
                    print(f"[done] {target} {method} s{sparsity} seed {seed}: {r['metric_name']} {r['metric']:.4f} "
                          f"({r['wall_s']:.0f}s)", flush=True)


def recorded_cells() -> set[tuple]:
    """The cells the results file already has, as `key` gives them."""
    return {key(r) for r in json.loads(RESULTS.read_text()).get("records", [])} if RESULTS.is_file() else set()


def key(row: dict) -> tuple:
    return row["target"], row["sparsity"], row["method"], row["seed"]


def write(row: dict, command: str, keep_existing: bool) -> dict:
    """Put one record (and the command) into the results file, read afresh since other runners may write
    beside this one; with `keep_existing`, a record already there stays (with the wall time measured when it ran).
    Returns the record now in the file."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        on_disk = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        rows = {key(r): r for r in on_disk.get("records", [])}
        if not (keep_existing and key(row) in rows):
            rows[key(row)] = row
        commands = on_disk.get("commands", [])
        if command not in commands:
            commands.append(command)
        _write(rows, commands)
        return rows[key(row)]


def _write(rows: dict, commands: list[str]) -> None:
    payload = {
        "commands": commands,
        "protocol": "MiniLM-L6 (all-MiniLM-L6-v2), quick preset, target training set limited to 1,000 examples "
                    "(stratified, seed), full dev set; auxiliary data up to 20k examples per target; "
                    "methods as in bench/transfer_limited_data.py METHODS",
        "methods": {name: {"overrides": overrides, "teacher": TEACHER_RECIPES[kind], "teacher_only": teacher_only}
                    for name, (overrides, kind, teacher_only) in METHODS.items()},
        "note": "wall_s is the cell's own run; a cell that trains a teacher others reuse includes that teacher",
        "renamed_methods": RENAMED,
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__},
        "records": sorted(rows.values(), key=lambda r: (r["target"], r["sparsity"], r["method"], r["seed"])),
    }
    write_json(RESULTS, payload)


if __name__ == "__main__":
    main()
