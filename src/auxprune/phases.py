"""A job as a list of phases, and the one driver that runs them, skips the finished ones and
resumes the current one.

The resume contract, the same for every phase:
- a phase that trains declares its outcome (`save`: named state dicts and values) and how it
  comes back (`restore`); files it writes into the run folder as deliverables (the teacher) it
  writes itself and `restore` reads back;
- when such a phase finishes, the driver writes its record (`Checkpointer.save_record`): the
  outcome, plus the run's continuation (the random states and the positions of the data streams
  the phases share), whole or absent;
- on `--resume` a phase with a record is restored instead of run, so the next phase starts as it
  would have in an uninterrupted run; the phase of the newest checkpoint continues from it, inside
  its training loop (`checkpoint.LoopState`);
- phases without `save` (surgery, evaluation) are cheap and deterministic: they run again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass

from auxprune.checkpoint import Checkpoint, Checkpointer, LoopState, Stateful, StopRequest, restore_continuation
from auxprune.errors import CannotResume


@dataclass
class Phase:
    name: str
    run: Callable[[LoopState], None]
    save: Callable[[], Mapping[str, Stateful]] | None = None  # None: recomputed on resume
    restore: Callable[[dict], None] | None = None  # gets what `save` returned, as saved state dicts
    timer: str | None = None  # the report's timing entry (default: the name)
    meta: Callable[[], dict] | None = None  # plain values written beside its record (meta.json)


def run_phases(phases: list[Phase], *, checkpoints: Checkpointer, latest: Checkpoint | None,
               loop_state: Callable[[str], LoopState], continuation: Mapping[str, Stateful], timer,
               stop: StopRequest) -> None:
    """Run `phases` in order. `latest` is the newest checkpoint of the run being resumed (None: a
    fresh start); `continuation` the objects whose state carries from one phase to the next; `stop`
    turns a Ctrl-C into a checkpoint during the phases that train (elsewhere it interrupts)."""
    finished = _finished(phases, checkpoints, latest)
    for phase in phases:
        with timer.phase(phase.timer or phase.name), (stop.installed() if phase.save else nullcontext()):
            if phase.name in finished:
                state = finished[phase.name].load()
                phase.restore(state["outcome"])
                restore_continuation(continuation, state["continuation"], state)
                continue
            phase.run(loop_state(phase.name))
            if phase.save is not None:
                checkpoints.save_record(phase.name, phase.save(), continuation, phase.meta() if phase.meta else None)


def _finished(phases: list[Phase], checkpoints: Checkpointer, latest: Checkpoint | None) -> dict[str, Checkpoint]:
    """The records of the phases a resumed run skips; refuses a run folder whose records do not
    account for every phase before the newest checkpoint's."""
    if latest is None:
        return {}
    names = [p.name for p in phases]
    if latest.phase not in names:
        raise CannotResume(f"{latest.path}: a checkpoint of phase '{latest.phase}', which this run does not have; "
                           "it was written by another version of auxprune or config: start the run again without resuming")
    records = {p.name: checkpoints.record(p.name) for p in phases if p.save is not None}
    before = names[:names.index(latest.phase)]
    missing = [name for name in before if name in records and records[name] is None]
    if missing:
        raise CannotResume(f"{checkpoints.root}: the newest checkpoint is in phase '{latest.phase}' but phase "
                           f"{', '.join(missing)} left no record: it was written by another version of auxprune; "
                           "start the run again without resuming")
    return {name: record for name, record in records.items() if record is not None}
