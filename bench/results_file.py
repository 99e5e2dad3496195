"""The results file every resumable benchmark keeps: records added one at a time, under a lock, by
runners that may work side by side, each record replacing an earlier one of the same cell."""

from __future__ import annotations

import fcntl
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch

from auxprune.output import write_json

ROOT = Path(__file__).resolve().parents[1]


def display(path: Path) -> str:
    """`path` as records and commands name it: relative to the repository where it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def machine() -> dict:
    return {"platform": platform.platform(), "torch": torch.__version__, "cpu_count": os.cpu_count()}


def add_record(path: Path, row: dict, command: str, key: Callable[[dict], tuple], header: dict,
               keep: tuple[str, ...] = ()) -> None:
    """Add `row` to `path`, read afresh under a lock; `header` fields go before the records, the
    `keep` fields already in the file are carried over after them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        on_disk = json.loads(path.read_text()) if path.is_file() else {}
        rows = {key(r): r for r in on_disk.get("records", [])}
        rows[key(row)] = row
        commands = on_disk.get("commands", [])
        if command not in commands:
            commands.append(command)
        write_json(path, {"commands": commands, **header, "records": sorted(rows.values(), key=key),
                          **{name: on_disk.get(name, {}) for name in keep}})
