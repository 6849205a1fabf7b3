"""Run a bench/ script as the smoke tests do, and prove that it leaves no process behind.

The script gets a marker in its environment, and every process it starts inherits it (gunicorn,
wrk, PostgreSQL keep the caller's environment), so after the run, however it ended, /proc shows
whether any of them outlived it. The script runs in a process group of its own, killed on
every exit path (as a timeout kills it: SIGKILL, so its own `finally` does not run); the
servers it started, in groups of their own, must then stop by themselves (bench/load.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "FLASK_BACKEND_BENCH_RUN"
# How long the servers may take to stop once the script is gone: gunicorn's master stops its
# workers on SIGTERM (ours stop at once; graceful_timeout is 25 s), PostgreSQL its backends.
STOP_SECONDS = 30


@dataclass(frozen=True)
class Bench:
    process: subprocess.Popen[str]
    token: str

    def processes(self) -> dict[int, str]:
        """Every live process that carries this run's marker: pid -> command line."""
        needle = f"{MARKER}={self.token}".encode()
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone meanwhile
                continue
            found[int(entry.name)] = command.strip()
        return found

    def leftovers(self) -> dict[int, str]:
        """The marked processes still alive STOP_SECONDS after the script died; each is killed
        (the test fails, but leaves nothing either)."""
        deadline = time.monotonic() + STOP_SECONDS
        while (alive := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return alive


@contextmanager
def started(script: str, *args: str) -> Iterator[Bench]:
    """bench/`script` running; on leaving, its process group is killed and nothing it started
    may be left."""
    token = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env={**os.environ, MARKER: token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    bench = Bench(process, token)
    try:
        yield bench
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        left = bench.leftovers()
        assert not left, f"bench/{script} left processes behind: {left}"


def run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """bench/`script` to its end, or killed after `timeout` s (returncode -9, said in stderr)."""
    with started(script, *args) as bench:
        try:
            stdout, stderr = bench.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(bench.process.pid, signal.SIGKILL)
            stdout, stderr = bench.process.communicate()
            stderr += f"\n[bench/{script} killed: still running after {timeout} s]"
    return subprocess.CompletedProcess(bench.process.args, bench.process.returncode, stdout, stderr)
