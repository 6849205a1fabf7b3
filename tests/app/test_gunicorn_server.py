"""Real gunicorn with the shipped gunicorn.conf.py, on 127.0.0.1: graceful shutdown on SIGTERM
and the JSON log lines it prints. Every wait is bounded; the process is always killed."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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

    def log_lines(self) -> list[str]:
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
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
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
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", app_uri]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=APP_DIR, env=environ, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        server = Server(process, port, log)

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


def test_sigterm_lets_the_in_flight_request_finish_then_exits(tmp_path: Path) -> None:
    started = tmp_path / "slow-request-started"
    with (
        gunicorn("slow_wsgi:create_app()", tmp_path, SLOW_STARTED_FILE=str(started)) as server,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        # Given a slow request in flight
        in_flight = pool.submit(get, server.port, "/slow")
        wait_for(started.exists, timeout=10, what="the /slow request to start")
        # When gunicorn receives SIGTERM, as from the kubelet
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Then the request still completes
        status, _, body = in_flight.result(timeout=GRACEFUL_TIMEOUT + 5)
        assert (status, json.loads(body)) == (200, {"status": "done"})
        # And new connections are refused
        wait_for(
            lambda: not accepts_connections(server.port),
            timeout=GRACEFUL_TIMEOUT,
            what="the port to refuse connections",
        )
        # And gunicorn exits cleanly within its graceful timeout
        assert server.process.wait(timeout=GRACEFUL_TIMEOUT + 5) == 0
        assert time.monotonic() - signalled < GRACEFUL_TIMEOUT + 2


def test_every_line_gunicorn_prints_is_json_and_requests_carry_their_id(tmp_path: Path) -> None:
    # Given gunicorn serving the app
    with gunicorn("backend_api:create_app()", tmp_path) as server:
        # When a request with an id is served and gunicorn stops
        status, headers, _ = get(server.port, "/api/v1/info", {"X-Request-ID": "e2e-42"})
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=GRACEFUL_TIMEOUT + 5) == 0
        lines = server.log_lines()
    assert (status, headers["X-Request-ID"]) == (200, "e2e-42")
    # Then every line of the error and access logs is a JSON object
    entries = [json.loads(line) for line in lines]
    assert {entry["logger"] for entry in entries} >= {"gunicorn.error", "gunicorn.access"}
    # And the access line of the request has the request id, status and path as fields
    (access,) = [
        e for e in entries if e["logger"] == "gunicorn.access" and e["path"] != "/startupz"
    ]
    assert (access["path"], access["status"], access["request_id"]) == (
        "/api/v1/info",
        200,
        "e2e-42",
    )
    # And the secret key is nowhere in the logs
    assert all(SECRET not in line for line in lines)
