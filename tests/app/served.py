"""Real gunicorn with the shipped gunicorn.conf.py on 127.0.0.1, for the tests: started as the
image starts it, ready when /startupz answers, always killed. Every wait is bounded."""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[2] / "app"
TESTS_DIR = Path(__file__).resolve().parent
GRACEFUL_TIMEOUT = 5
SECRET = "e2e-signing-key"


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    drained: threading.Event  # set when gunicorn's stdout reached its end

    def log_lines(self) -> list[str]:
        """What gunicorn printed so far; everything, once it has exited."""
        if self.process.poll() is not None:
            self.drained.wait(timeout=10)
        return self.log.read_text().splitlines()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return False
    return True


@contextmanager
def gunicorn(app_uri: str, tmp_path: Path, **env: str) -> Iterator[Server]:
    """Run gunicorn as the image does (working directory app/, shipped config) until ready."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(APP_DIR), str(TESTS_DIR)]),
        "PYTHONUNBUFFERED": "1",
        "PORT": str(port),
        "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "CPU_LIMIT_MILLICORES": "1000",
        "FLASK_SECRET_KEY": SECRET,
        **env,
    }
    # setpriv --pdeathsig: when the test run itself is killed (no `finally` runs), the kernel
    # sends gunicorn's master SIGTERM and it stops its workers: no server outlives the run
    # (tests/postgres.py and bench/load.py start theirs alike).
    command = [
        *("setpriv", "--pdeathsig=TERM", "--"),
        *(sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", app_uri),
    ]
    # stdout is a pipe, as under a container runtime (where writes of up to PIPE_BUF bytes
    # are atomic), copied to the log file as it comes.
    process = subprocess.Popen(
        command, cwd=APP_DIR, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    drained = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        with log.open("wb") as output:
            while chunk := os.read(process.stdout.fileno(), 65536):
                output.write(chunk)
                output.flush()
        drained.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        server = Server(process, port, log, drained)

        def ready() -> bool:
            assert process.poll() is None, "gunicorn exited:\n" + log.read_text()
            try:
                return get(port, "/startupz")[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout=15, what="gunicorn to serve /startupz")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        drained.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
