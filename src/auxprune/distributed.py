"""Several processes (data parallelism): who this process is, the few collectives a run needs, the launcher.

A run on N processes (`auxprune prune --processes N`, or `accelerate launch -m auxprune prune`)
trains one replicated `Objective` (the model, gates, multipliers, layer map, auxiliary heads) under
DDP: every process reads its slice of every global batch (`data.batching.BucketBatchSampler`), the
gradients of every trainable parameter are averaged, and the main process alone writes the run
folder. Everything here is a no-op in one process, so a single-process run computes what it did
before.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from auxprune.errors import UserError

T = TypeVar("T")


def processes() -> int:
    """Processes of this run: the process group's size, else the launcher's WORLD_SIZE (known before
    the group exists), else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the run folder, the logs and the bars (rank 0)."""
    return rank() == 0


def active() -> bool:
    """Whether collectives run: a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _device() -> torch.device:
    """Where small collective tensors live: NCCL reduces only GPU tensors, gloo CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def total(tensor: Tensor) -> Tensor:
    """The sum over processes of a tensor without gradient (the tensor itself in one process)."""
    if not active():
        return tensor
    summed = tensor.detach().clone()
    dist.all_reduce(summed)
    return summed


def mean_values(values: Mapping[str, Tensor]) -> dict[str, float]:
    """Scalars averaged over processes, as floats (for the log: each process holds its slice's loss)."""
    if not active():
        return {name: value.item() for name, value in values.items()}
    stacked = torch.stack([value.detach().float().to(_device()) for value in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, (stacked / dist.get_world_size()).tolist()))


def gather(value) -> list:
    """A picklable value from every process, by rank, on every process ([value] in one process)."""
    if not active():
        return [value]
    found: list = [None] * dist.get_world_size()
    dist.all_gather_object(found, value)
    return found


def from_main(compute: Callable[[], T]) -> T:
    """`compute()` run by the main process alone, its (picklable) value returned on every process: work whose
    result every process needs alike, done once. When it raises, every process raises (the others a UserError
    or RuntimeError with its message), so none waits for a value that never comes."""
    if not active():
        return compute()
    outcome: list = [None]
    if is_main():
        try:
            outcome = [("value", compute())]
        except Exception as err:
            dist.broadcast_object_list([("user_error" if isinstance(err, UserError) else "error", str(err))], src=0)
            raise
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "value":
        return value
    raise UserError(value) if kind == "user_error" else RuntimeError(f"the main process failed: {value}")


def any_process(flag: bool) -> bool:
    """Whether `flag` holds on some process: every process takes the same decision (e.g. to stop after this step)."""
    if not active():
        return flag
    value = torch.tensor([1 if flag else 0], device=_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def check_replicated(name: str, values: Sequence[float]) -> None:
    """Raise when numbers that every process must hold alike (expected sparsity, multipliers) differ."""
    if not active():
        return
    seen = gather([float(v) for v in values])
    if any(other != seen[0] for other in seen[1:]):
        raise RuntimeError(f"{name} differs between processes: {seen}; the replicated parameters diverged")


def shard(items: Iterable) -> Iterator:
    """This process's share of `items` (every N-th, from its rank): evaluation batches, spread over processes."""
    if not active():
        yield from items
        return
    here, count = dist.get_rank(), dist.get_world_size()
    for index, item in enumerate(items):
        if index % count == here:
            yield item


def check_batch_sizes(sizes: Mapping[str, int], count: int) -> None:
    """Each process takes batch_size / processes of every global batch: refuse what does not divide."""
    for field, size in sizes.items():
        if size % count:
            raise UserError(f"{field}={size} does not divide over {count} processes; expected a multiple of {count} "
                            f"(each process takes {field} / processes examples of every batch)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(argv: list[str], count: int, grace_s: float = 10.0) -> int:
    """Run `python -m auxprune.cli ARGV` as `count` processes on this machine (gloo on the CPU), as
    `accelerate launch` would; returns their exit code.

    Each gets RANK, WORLD_SIZE, MASTER_ADDR/PORT and, unless set, OMP_NUM_THREADS = cores / count.
    They run in their own session: Ctrl-C reaches this process, which passes it on once to each
    (the first asks the runs to stop at the same step and save). When one fails, the others get
    `grace_s` to end by themselves (a bad input fails on all, and rank 0 says why), then are killed.
    """
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(count),
               LOCAL_WORLD_SIZE=str(count))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    children = [subprocess.Popen([sys.executable, "-m", "auxprune.cli", *argv], start_new_session=True,
                                 env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in range(count)]

    def forward(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed_at = None
        while any(child.poll() is None for child in children):
            if failed_at is None and any(child.returncode not in (None, 0) for child in children):
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > grace_s:
                for child in children:
                    if child.poll() is None:
                        child.kill()
            time.sleep(0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    codes = [child.returncode for child in children]
    code = codes[0] if codes[0] != -signal.SIGKILL or all(c == codes[0] for c in codes) else next(c for c in codes if c)
    return 128 - code if code < 0 else code
