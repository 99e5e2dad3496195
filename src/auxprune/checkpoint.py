"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is a folder `RUN/checkpoints/<seq>-<phase>-<step>/` holding `state.pt` (state
dicts of the model, gates, multipliers, optimizers, schedulers and data sampler, plus the RNG
states) and `meta.json` (phase, step, timings), written last. Folders are written under a
temporary name and renamed, so a checkpoint is whole or absent; only the newest `keep` are kept.

Training loops save after step N when N is a multiple of `every`, at the end of each phase, and
when the user asked to stop (Ctrl-C). A resumed loop restores the same objects and RNG states
and continues with step N + 1 on the same batch it would have seen: on the CPU the resumed run
is bit-identical to an uninterrupted one. In a run of several processes the main process writes
the checkpoint, with every process's RNG states (`ranks`), and each process restores its own.

A finished phase leaves a record, `RUN/checkpoints/phases/<phase>/` (same files, same atomic
write, never rotated): the outcome the phase declared and the run's continuation (the RNG states
and the shared data streams' positions at its end). `phases.run_phases` restores it instead of
running the phase again.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from auxprune import distributed
from auxprune.errors import CannotResume, UserError

CHECKPOINTS = "checkpoints"
RECORDS = "phases"  # in the checkpoints folder: one record per finished phase
_NAME = re.compile(r"(\d{6})-([a-z][a-z0-9_]*)-(\d{7})")
# Fault injection for the kill-and-resume tests: send this process a signal at a named point,
# e.g. "step:prune:5" (SIGKILL after training step 5 of pruning), "checkpoint:teacher:4"
# (SIGKILL half-way through writing that checkpoint), "SIGINT step:prune:3" (Ctrl-C there).
KILL_AT_ENV = "AUXPRUNE_TEST_KILL_AT"


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def _maybe_kill(point: str) -> None:
    spec = os.environ.get(KILL_AT_ENV, "").split()
    if spec and spec[-1] == point:
        os.kill(os.getpid(), getattr(signal, spec[0]) if len(spec) == 2 else signal.SIGKILL)


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             # numpy's key array is stored as a tensor: checkpoints load with weights_only=True.
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Checkpoint:
    path: Path
    phase: str
    step: int
    meta: dict

    def load(self) -> dict:
        """The saved state dicts; our own file, still read with `weights_only=True`."""
        try:
            return torch.load(self.path / "state.pt", map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged checkpoint is reported, not a traceback
            raise UserError(f"{self.path}: checkpoint cannot be read ({type(err).__name__}); "
                            f"delete it to resume from the one before") from err


class Checkpointer:
    """Writes, lists and rotates the checkpoints of one run folder."""

    def __init__(self, run_dir: Path, every: int = 0, keep: int = 2):
        self.root = Path(run_dir) / CHECKPOINTS
        self.every, self.keep = every, max(1, keep)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def all(self) -> list[Checkpoint]:
        found = []
        if self.root.is_dir():
            for path in sorted(self.root.iterdir()):
                match = _NAME.fullmatch(path.name)
                if match and (path / "meta.json").is_file():
                    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
                    found.append(Checkpoint(path, match.group(2), int(match.group(3)), meta))
        return found

    def latest(self) -> Checkpoint | None:
        found = self.all()
        return found[-1] if found else None

    def save(self, phase: str, step: int, objects: Mapping[str, Stateful], meta: dict | None = None) -> Path:
        existing = self.all()
        seq = int(_NAME.fullmatch(existing[-1].path.name).group(1)) + 1 if existing else 0
        final = self.root / f"{seq:06d}-{phase}-{step:07d}"
        state = {name: obj.state_dict() for name, obj in objects.items()}
        state["rng"] = rng_state()
        _write_folder(final, state, {"phase": phase, "step": step, **(meta or {})}, f"checkpoint:{phase}:{step}")
        for old in self.all()[:-self.keep]:
            shutil.rmtree(old.path, ignore_errors=True)
        return final

    @property
    def records(self) -> Path:
        return self.root / RECORDS

    def record(self, phase: str) -> Checkpoint | None:
        """The record a finished `phase` left, or None."""
        path = self.records / phase
        if not (path / "meta.json").is_file():
            return None
        return Checkpoint(path, phase, -1, json.loads((path / "meta.json").read_text(encoding="utf-8")))

    def save_record(self, phase: str, outcome: Mapping[str, Stateful], continuation: Mapping[str, Stateful],
                    meta: dict | None = None) -> None:
        """Write `phase`'s record: its outcome and the run's continuation (on every process: the
        RNG states are gathered; the main process writes)."""
        state = {"outcome": {name: obj.state_dict() for name, obj in outcome.items()},
                 "continuation": {name: obj.state_dict() for name, obj in continuation.items()}, "rng": rng_state()}
        if distributed.active():
            state["ranks"] = distributed.gather(rank_state(continuation))
        if distributed.is_main():
            _write_folder(self.records / phase, state, {"phase": phase, **(meta or {})}, f"record:{phase}:0")
        _maybe_kill(f"recorded:{phase}:0")

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def restore_continuation(objects: Mapping[str, Stateful], states: dict, saved: dict) -> None:
    """Load `objects` from `states` (their saved state dicts by name) and the random streams from
    `saved` (a checkpoint's or record's `rng`, and `ranks` in a run of several processes), this
    process's own part included."""
    for name, obj in objects.items():
        obj.load_state_dict(states[name])
    if distributed.active():  # each process continues its own random streams (dropout, masking)
        ranks = saved.get("ranks") or []
        if len(ranks) != distributed.processes():
            raise CannotResume(f"checkpoint was written by {len(ranks) or 1} process(es), this run has "
                               f"{distributed.processes()}; resume with as many as it started with")
        mine = ranks[distributed.rank()]
        for name, obj in objects.items():
            if hasattr(obj, "load_rank_state_dict"):
                obj.load_rank_state_dict(mine[name])
        set_rng_state(mine["rng"])
    else:
        set_rng_state(saved["rng"])


def _write_folder(final: Path, state: dict, meta: dict, kill_point: str) -> None:
    """`state.pt` then `meta.json` under a temporary name, renamed into place: whole or absent."""
    tmp = final.parent / f".tmp-{final.name}"
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(".tmp-*"):  # left by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    try:
        torch.save(state, tmp / "state.pt")
        _maybe_kill(kill_point)
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        if final.exists():  # a record written again by a phase that resumed at its last step
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{tmp}: cannot write checkpoint ({err.strerror or err})") from err


class StopRequest:
    """The first Ctrl-C asks the training loop to stop after the current step and save;
    a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class Stopped(KeyboardInterrupt):
    """Raised after the checkpoint that a stop request asked for has been written (by the main
    process: on the others `checkpoint` is None)."""

    def __init__(self, checkpoint: Path | None):
        super().__init__(f"stopped; checkpoint {checkpoint}")
        self.checkpoint = checkpoint


def rank_state(objects: Mapping[str, Stateful]) -> dict:
    """This process's own part of a checkpoint: its RNG states and what its objects keep per process."""
    return {"rng": rng_state(), **{name: obj.rank_state_dict() for name, obj in objects.items()
                                   if hasattr(obj, "rank_state_dict")}}


@dataclass
class LoopState:
    """Checkpointing for one training loop: where it starts, and when and what it saves.

    `restore` is the state of this phase's latest checkpoint when resuming; `meta` is called for
    the JSON metadata saved alongside (timings and the like).
    """

    phase: str
    checkpointer: Checkpointer | None = None
    restore: dict | None = None
    stop: StopRequest | None = None
    meta: Callable[[], dict] = field(default=dict)

    def start(self, objects: Mapping[str, Stateful]) -> int:
        """Load the saved states into `objects`; the number of steps already done (0 when fresh)."""
        if self.restore is None:
            return 0
        missing = [name for name in objects if name not in self.restore]
        if missing:  # e.g. written by an auxprune before the pruner interface (issue 17)
            raise CannotResume(f"checkpoint of phase '{self.phase}' has no {', '.join(missing)}: it was written by another "
                            "version of auxprune; start the run again without resuming")
        restore_continuation(objects, self.restore, self.restore)
        return int(self.restore["step"])

    def after_step(self, step: int, total: int, objects: Mapping[str, Stateful]) -> None:
        _maybe_kill(f"step:{self.phase}:{step}")
        # With several processes all stop at the same step: the one a Ctrl-C reached first.
        stopping = distributed.any_process(self.stop is not None and self.stop.requested)
        if self.checkpointer is None:
            if stopping:
                raise KeyboardInterrupt
            return
        if stopping or step == total or self.checkpointer.due(step):
            saved = {**objects, "step": Value(step)}
            if distributed.active():  # what differs between processes; the main process writes it all
                saved["ranks"] = Value(distributed.gather(rank_state(objects)))
            path = self.checkpointer.save(self.phase, step, saved, self.meta()) if distributed.is_main() else None
            if stopping:
                raise Stopped(path)


@dataclass
class Value:
    """A plain value (number, list, dict of numbers) saved in a checkpoint next to the state dicts."""

    value: Any

    def state_dict(self) -> Any:
        return self.value

    def load_state_dict(self, value: Any) -> None:
        self.value = value
