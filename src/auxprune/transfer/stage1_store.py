"""Stage 1 (the encoder trained on the auxiliary tasks alone) as a folder another run can start from.

Stage 1 never sees the target's labels, and with 20,000 auxiliary examples it is a large part of an
`--aux` run (MRPC with Twitter URL: 23-70 minutes on one core, beside about an hour for the rest). A run that trains it keeps it as `DIR/stage1/` (the phase's record, see `phases.py`:
the encoder, the auxiliary heads and the random and data streams as stage 1 left them).
`transfer.stage1_from=DIR` starts another run from it: another sparsity, another size of the same
target's training set, another target task. With the same config and target it ends exactly as the
run that trained it did (the continuation is restored); otherwise the target's phases start from it.

What stage 1 depends on is written next to it (`trained_with`, in meta.json) and checked before a run
starts from it, so that a result is never reused for other auxiliary data or settings by mistake.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from auxprune.checkpoint import Checkpoint, Checkpointer
from auxprune.errors import UserError

FOLDER = "stage1"  # in a finished run's folder
PHASE = "stage1"  # the phase's name, and its record's folder in a run still in progress


def trained_with(config, head: str, aux, epochs: float, processes: int) -> dict:
    """Everything stage 1's result depends on, as plain values: the model, the auxiliary data as encoded
    (a digest per task: a masked-LM source on the target's own text, `mlm`, ties it to the target's
    training set), the optimiser's settings, the seed."""
    t, train = config.transfer, config.train
    inputs = {
        "model": config.model.name, "pooling": config.model.pooling, "max_seq_len": config.model.max_seq_len,
        "head": head, "seed": config.seed, "precision": train.precision, "processes": processes,
        "aux": [source.model_dump(mode="json") for source in t.aux],
        "aux_data": {task.name: _digest(task.loader.dataset) for task in aux.tasks},
        "aux_batch_size": t.aux_batch_size or train.batch_size,
        "how": t.how, "epochs": epochs, "lr": t.stage1_lr,
        "train": {"weight_decay": train.weight_decay, "warmup_ratio": train.warmup_ratio,
                  "max_grad_norm": train.max_grad_norm},
    }
    if t.how == "sequential":  # what stage 2 keeps of stage 1 (weights, masks, ties) is decided at its end
        inputs["sequential"] = {"stage1": t.stage1, "what": t.what, "share": t.share, "tie_strength": t.tie_strength}
        if t.stage1 == "prune":
            inputs["prune"] = config.prune.model_dump(mode="json")
    return inputs


def _digest(items) -> str:
    return hashlib.sha256(json.dumps(list(items), sort_keys=True, default=str).encode()).hexdigest()[:16]


def find(source: str) -> Checkpoint:
    """The stage-1 result `transfer.stage1_from` names: a run folder (its `stage1/`, or the record of a run
    still in progress), or the stage-1 folder itself."""
    path = Path(source)
    for candidate in (path / FOLDER, Checkpointer(path).records / PHASE, path):
        meta = candidate / "meta.json"
        if meta.is_file() and (candidate / "state.pt").is_file():
            try:
                found = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise UserError(f"transfer.stage1_from: {meta} cannot be read ({type(err).__name__})") from err
            if found.get("phase") == PHASE:
                return Checkpoint(candidate, PHASE, -1, found)
    raise UserError(f"transfer.stage1_from: no stage-1 result at {source} (expected {path / FOLDER}/, which a run "
                    "with auxiliary tasks writes when it trains the encoder on them first)")


def check(found: Checkpoint, expected: dict) -> None:
    """Refuse a stage-1 result trained with other data or settings than this run's, naming what differs."""
    saved = found.meta.get("trained_with")
    if saved is None:
        raise UserError(f"transfer.stage1_from: {found.path} does not say what it was trained with (written by an "
                        "older auxprune); train stage 1 again")
    differ = sorted(key for key in expected.keys() | saved.keys() if expected.get(key) != saved.get(key))
    if differ:
        shown = "; ".join(f"{key}: {json.dumps(saved.get(key))[:80]} there, {json.dumps(expected.get(key))[:80]} here"
                          for key in differ)
        raise UserError(f"transfer.stage1_from: {found.path} was trained with other settings ({shown}); "
                        "use the same ones or train stage 1 again")


def keep(checkpoints: Checkpointer, output: Path) -> Path | None:
    """Move the finished stage 1's record out of the checkpoints (about to be deleted) into `output/stage1`."""
    record = checkpoints.record(PHASE)
    if record is None:
        return None
    target = Path(output) / FOLDER
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(record.path), str(target))
    return target
