"""The served API against a real PostgreSQL (issue 24): client errors are 4xx, never a server
error nor a traceback; a frozen database makes requests fail fast and readiness answer
"unready" within the probe's timeout. Real gunicorn with our worker, one worker."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from served import Server, get, gunicorn

from backend_api import db
from tests.postgres import PostgresServer, start_server

# How long the database stays frozen: longer than every client-side deadline, so a request
# that waits on the database's answer alone would still be waiting when it thaws.
FROZEN_SECONDS = 3 * db.QUERY_DEADLINE_SECONDS
# A request that fails fast answers within its deadline and this much.
SLACK_S = 2.0


def post(server: Server, path: str, body: bytes, timeout: float = 10) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def served_api(migrated_url: str, tmp_path: Path) -> Iterator[Server]:
    with gunicorn("backend_api:create_app()", tmp_path, FLASK_DATABASE_URL=migrated_url) as server:
        yield server


@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        (b'{"name": "a\\u0000b"}', {400, 422}),
        (b'{"name": "a\\ud800b"}', {400, 422}),
        (b'{"name": ' * 100_000 + b"1" + b"}" * 100_000, {400, 422}),
        (b"[" * 100_000 + b"]" * 100_000, {400, 422}),
    ],
    ids=["nul", "lone-surrogate", "nested-100000-object", "nested-100000-array"],
)
def test_client_errors_are_4xx_without_a_traceback(
    served_api: Server, body: bytes, statuses: set[int]
) -> None:
    status, answer = post(served_api, "/api/v1/items", body)
    assert status in statuses, answer
    assert json.loads(answer)["error"]["status"] == status
    assert b"Traceback" not in answer
    assert "Retry-After" not in answer.decode()
    # And the server logged no error: it was the client's
    errors = [line for line in served_api.log_lines() if '"level": "error"' in line]
    assert errors == []


def signal_server(server: PostgresServer, signum: int) -> None:
    """Send `signum` to the postmaster and every backend. Each backend is the leader of a
    process group of its own (PostgreSQL calls setsid()), so killpg would reach the
    postmaster alone."""
    assert server.process is not None
    postmaster = server.process.pid
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    for pid in [postmaster, *map(int, children)]:
        with suppress(ProcessLookupError):  # a backend that ended meanwhile
            os.kill(pid, signum)


@pytest.fixture
def frozen_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own: the test stops its processes (SIGSTOP), and always
    lets them go on before it stops the server."""
    try:
        server = start_server({"fsync": "off"})
    except (RuntimeError, OSError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL server: {error}")
    try:
        yield server
    finally:
        if server.process is not None:
            signal_server(server, signal.SIGCONT)
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


def test_a_frozen_database_fails_requests_fast_and_readiness_in_time(
    frozen_postgres: PostgresServer, tmp_path: Path
) -> None:
    from backend_api import migrate

    url = frozen_postgres.create_database()
    assert migrate.upgrade(url, lock_timeout=30) == 0
    from flask_backend import Probes

    probe_timeout = Probes().timeout_seconds
    with gunicorn("backend_api:create_app()", tmp_path, FLASK_DATABASE_URL=url) as server:
        # Given a serving pod whose pooled connections are open
        for _ in range(3):
            assert get(server.port, "/api/v1/items")[0] == 200
        assert get(server.port, "/readyz")[0] == 200
        # When every PostgreSQL process stops answering (the host froze, the network dropped)
        signal_server(frozen_postgres, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            # Then readiness answers "unready" within the probe's timeout, again and again
            readiness = []
            while time.monotonic() - frozen_at < FROZEN_SECONDS:
                start = time.monotonic()
                try:
                    status = get(server.port, "/readyz", timeout=probe_timeout)[0]
                except TimeoutError:
                    status = 0
                readiness.append((status, time.monotonic() - start < probe_timeout))
                # And requests fail with 503 within their deadline, not after the freeze
                start = time.monotonic()
                status, headers, _ = get(server.port, "/api/v1/items", timeout=FROZEN_SECONDS)
                took = time.monotonic() - start
                assert (status, headers.get("Retry-After")) == (503, "1")
                assert took < db.QUERY_DEADLINE_SECONDS + SLACK_S
        finally:
            signal_server(frozen_postgres, signal.SIGCONT)
        assert readiness[1:] == [(503, True)] * (len(readiness) - 1), readiness
        assert readiness[0][1], readiness
        # And once the database answers again, so does the pod
        deadline = time.monotonic() + 15
        while get(server.port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "readiness did not come back"
            time.sleep(0.5)
        assert get(server.port, "/api/v1/items")[0] == 200
