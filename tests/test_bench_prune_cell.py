"""bench/prune_cell.py, the cell runner the resumable bench scripts share: a finished run folder is read,
an interrupted one resumed, a fresh one run with its threads. No training: subprocess.run is replaced by
a fake that writes the run's report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["auxprune", "prune", "--task", "glue/mrpc", "--sparsity", "0.9", "--output", "cell", "--overwrite"]


@pytest.fixture
def cell(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import prune_cell

    calls = []

    def fake_run(argv, check, env, cwd):
        calls.append({"argv": argv, "check": check, "env": dict(env), "cwd": cwd})
        (tmp_path / "cell" / "report.json").write_text(json.dumps({"status": "ok", "timing": {"total": 999.0}}))

    monkeypatch.setattr(prune_cell, "subprocess", SimpleNamespace(run=fake_run))
    monkeypatch.delenv("AUXPRUNE_DATA_DIR", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "cell").mkdir()
    return prune_cell, tmp_path / "cell", calls


def test_a_finished_folder_is_read_without_running(cell, capsys):
    prune_cell, out, calls = cell
    (out / "report.json").write_text(json.dumps({"status": "ok", "timing": {"total": 12.0}, "tag": "earlier"}))
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "step_10").mkdir()  # a finished run is read even beside its checkpoints
    report, wall, ran = prune_cell.run_prune(out, COMMAND, 2, "mrpc_cell")
    assert (report["tag"], wall, ran, calls) == ("earlier", None, False, [])
    assert "[skip] mrpc_cell: finished earlier" in capsys.readouterr().out
    prune_cell.run_prune(out, COMMAND, 2)  # no label: no [skip] line
    assert capsys.readouterr().out == ""


def test_a_folder_with_a_checkpoint_is_resumed_and_keeps_the_runs_own_time(cell, capsys):
    prune_cell, out, calls = cell
    (out / "report.json").write_text(json.dumps({"status": "failed"}))  # interrupted: not finished
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "step_10").mkdir()
    report, wall, ran = prune_cell.run_prune(out, COMMAND, 2, "mrpc_cell")
    assert calls[0]["argv"] == [sys.executable, "-m", "auxprune.cli", "prune", "--resume", str(out)]  # no threads flag
    assert (report["status"], wall, ran) == ("ok", 999.0, True)  # the run's total, not this invocation's seconds
    assert calls[0]["check"] is True and calls[0]["cwd"] == ROOT
    assert f"[run] mrpc_cell: auxprune prune --resume {out}" in capsys.readouterr().out
    (out / "report.json").unlink()
    prune_cell.run_prune(out, COMMAND, None, resume_as="bench/work/cell")
    assert calls[1]["argv"][-2:] == ["--resume", "bench/work/cell"]


def test_a_fresh_run_gets_its_threads(cell):
    prune_cell, out, calls = cell
    report, wall, ran = prune_cell.run_prune(out, COMMAND, 2, "mrpc_cell")
    assert calls[0]["argv"] == [sys.executable, "-m", "auxprune.cli", *COMMAND[1:], "--set", "train.threads=2"]
    env = calls[0]["env"]
    assert env["OMP_NUM_THREADS"] == "2" and env["AUXPRUNE_DATA_DIR"] == str(ROOT.parent / "shared" / "data")
    assert ran and wall is not None and wall < 999.0  # this invocation's seconds
    (out / "report.json").unlink()
    prune_cell.run_prune(out, COMMAND, None)
    assert calls[1]["argv"][3:] == COMMAND[1:] and "OMP_NUM_THREADS" not in calls[1]["env"]
    (out / "report.json").unlink()
    prune_cell.run_prune(out, COMMAND, 2, train_threads=False, env={"ONLY": "this"}, cwd=None)
    assert calls[2]["argv"][3:] == COMMAND[1:] and calls[2]["env"] == {"ONLY": "this"} and calls[2]["cwd"] is None
