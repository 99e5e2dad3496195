"""Real `auxprune` processes without paying the imports each time: a helper process imports the CLI
once, then forks one child per command. A child is a separate process like any other (killed with
SIGKILL, sent SIGINT, exit codes as `python -m auxprune.cli` gives them), started from an
interpreter that has imported torch and transformers but run nothing. Imports are most of the
cost of a tiny run, and the kill-and-resume tests make dozens of runs.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# The helper: one JSON request per line ({"argv", "env", "stdout", "stderr"}); for each it forks,
# the child runs the CLI with that environment and output files, and the helper answers with the
# child's exit code (-N when a signal N ended it, as subprocess reports).
HELPER = r"""
import json, os, sys, traceback
import auxprune.cli, auxprune.precision
auxprune.precision.cpu_has_native_bf16 = lambda: False  # as conftest: the tests train in fp32 on every machine
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.clear()
            os.environ.update(request["env"])
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            code = auxprune.cli.main(request["argv"])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(json.dumps(code), flush=True)
"""

_helper: subprocess.Popen | None = None
_lock = threading.Lock()


def _start() -> subprocess.Popen:
    global _helper
    if _helper is None or _helper.poll() is not None:
        _helper = subprocess.Popen([sys.executable, "-c", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, start_new_session=True)
        atexit.register(_stop, _helper)
    return _helper


def _stop(helper: subprocess.Popen) -> None:
    """The helper and any child it is waiting on."""
    try:
        os.killpg(helper.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    helper.wait()


def run_cli(argv: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m auxprune.cli ARGV` with environment `env`, as a forked child of the helper."""
    with _lock, tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        helper = _start()
        helper.stdin.write(json.dumps({"argv": argv, "env": env, "stdout": str(out), "stderr": str(err)}) + "\n")
        helper.stdin.flush()
        if not select.select([helper.stdout], [], [], timeout)[0]:
            _stop(helper)
            raise subprocess.TimeoutExpired(argv, timeout, out.read_text(), err.read_text())
        answer = helper.stdout.readline()
        if not answer:
            raise RuntimeError("the forking helper died")
        return subprocess.CompletedProcess(argv, json.loads(answer), out.read_text(), err.read_text())
