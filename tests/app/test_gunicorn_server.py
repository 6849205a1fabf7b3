"""Real gunicorn with the shipped gunicorn.conf.py, on 127.0.0.1: graceful shutdown on SIGTERM
and the JSON log lines it prints. Every wait is bounded; the process is always killed."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from served import (
    GRACEFUL_TIMEOUT,
    SECRET,
    TESTS_DIR,
    accepts_connections,
    get,
    gunicorn,
    wait_for,
)

from backend_api.worker import MEMORY_CHECK_EVERY, STOP_LINGER_SECONDS
from tests.pod import descendants


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


def test_a_worker_over_its_memory_share_is_replaced_and_no_request_fails(tmp_path: Path) -> None:
    # Given a worker whose memory is over its share of the (pretended 1 MiB) limit
    with gunicorn("tiny_memory_wsgi:create_app()", tmp_path) as server:
        # When it has served enough requests to check its memory, and more keep coming for 3 s
        statuses = [get(server.port, "/api/v1/info")[0] for _ in range(MEMORY_CHECK_EVERY)]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            statuses.append(get(server.port, "/api/v1/info")[0])
        lines = server.log_lines()
    # Then every request was answered
    assert set(statuses) == {200}
    # And the worker said why it restarted, and a new worker took over
    entries = [json.loads(line) for line in lines]
    assert any("over its 0 MiB share of the memory limit" in e["message"] for e in entries)
    assert len({e["pid"] for e in entries if e["logger"] == "gunicorn.access"}) >= 2


def test_sigterm_closes_idle_keep_alive_connections_after_a_short_linger(tmp_path: Path) -> None:
    # Given a long graceful timeout and a client that keeps its connection open after a request
    with gunicorn("backend_api:create_app()", tmp_path, GRACEFUL_TIMEOUT="20") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.request("GET", "/livez")
            assert connection.getresponse().read()
            # When gunicorn receives SIGTERM
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Then it exits once the idle connection is closed, not at the graceful timeout
            assert server.process.wait(timeout=25) == 0
            assert time.monotonic() - signalled < STOP_LINGER_SECONDS + 3
        finally:
            connection.close()


# A test process of its own, serving until it is killed.
SERVES_UNTIL_KILLED = """
import sys, time
from pathlib import Path

sys.path[:0] = [{tests!r}]
from served import gunicorn

with gunicorn("backend_api:create_app()", Path({tmp!r})) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


def test_no_gunicorn_outlives_a_killed_test_run(tmp_path: Path) -> None:
    # SIGKILL, as a CI timeout or a second Ctrl-C ends a run: no `finally` stops the server.
    code = SERVES_UNTIL_KILLED.format(tests=str(TESTS_DIR), tmp=str(tmp_path))
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as run:
        try:
            master = int(run.stdout.readline())  # type: ignore[union-attr]
            workers = descendants(master)
            assert workers, "gunicorn has no workers"
        finally:
            run.kill()
    try:
        for pid in (master, *workers):
            wait_for(
                lambda pid=pid: not running(pid),
                timeout=GRACEFUL_TIMEOUT + 10,
                what=f"gunicorn process {pid} to stop after the test run was killed",
            )
    finally:  # when this test fails, it still leaves no server behind
        for pid in (master, *workers):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by init, or by a subreaper, later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
