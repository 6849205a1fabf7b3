"""Misbehaving clients against real gunicorn with the shipped config: slow or silent clients
cannot starve the probes or the other clients, and gunicorn's own error pages are JSON.
Real sockets on 127.0.0.1; every wait is bounded and every socket closed."""

import hashlib
import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from served import Server, get, gunicorn

from backend_api import create_app
from backend_api.worker import PROBE_PATHS

# Far more than the requests one worker runs at once (4 threads before this test), far fewer
# than the connections it holds (worker_connections).
SLOW_CONNECTIONS = 200
KUBELET_PROBE_TIMEOUT_S = 1.0


@contextmanager
def half_sent_requests(port: int, count: int, head: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections that each send `head` (an unfinished request) and then nothing."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=2))
            sock.sendall(head)
            sockets.append(sock)
        yield sockets


def assert_probes_answer_in_time(server: Server) -> None:
    for path in sorted(PROBE_PATHS):
        start = time.monotonic()
        status, _, _ = get(server.port, path, timeout=KUBELET_PROBE_TIMEOUT_S)
        assert (path, status) == (path, 200)
        assert time.monotonic() - start < KUBELET_PROBE_TIMEOUT_S


def test_silent_clients_starve_neither_the_probes_nor_other_clients(tmp_path: Path) -> None:
    half_head = b"GET /api/v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    with (
        gunicorn("backend_api:create_app()", tmp_path) as server,
        # Given many clients that sent part of a request head and went silent
        half_sent_requests(server.port, SLOW_CONNECTIONS, half_head),
    ):
        # Then the probes answer within the kubelet's timeout, again and again
        for _ in range(3):
            assert_probes_answer_in_time(server)
        # And ordinary clients are served, many at once
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda _: get(server.port, "/api/v1/info", timeout=5), range(16))
            )
        assert {status for status, _, _ in answers} == {200}


def test_clients_that_send_their_body_slowly_hold_no_request_slot(tmp_path: Path) -> None:
    # Given a worker that runs 2 requests at once, and many clients that sent a request head
    # announcing a body, then a tenth of it, then nothing
    half_body = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789"
    with (
        gunicorn("slow_wsgi:create_app()", tmp_path, GUNICORN_THREADS="2") as server,
        half_sent_requests(server.port, 20, half_body),
    ):
        # Then other clients are still served at once, one after the other
        for _ in range(5):
            start = time.monotonic()
            assert get(server.port, "/api/v1/info", timeout=KUBELET_PROBE_TIMEOUT_S)[0] == 200
            assert time.monotonic() - start < KUBELET_PROBE_TIMEOUT_S


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [0, 10, 64 * 1024, 64 * 1024 + 1, 300_000])
def test_request_bodies_reach_the_app_whole(tmp_path: Path, size: int, chunked: bool) -> None:
    # Given bodies below, at and above the size past which they share the worker's budget for
    # large bodies (worker.SMALL_BODY_BYTES), with a length or chunked
    body = os.urandom(size)
    with gunicorn("slow_wsgi:create_app()", tmp_path) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            # When each is posted twice on one keep-alive connection
            answers = []
            for _ in range(2):
                if chunked:
                    pieces = [body[i : i + 50_000] for i in range(0, size, 50_000)]
                    connection.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
                else:
                    connection.request("POST", "/echo", body=body)
                answers.append(json.loads(connection.getresponse().read()))
        finally:
            connection.close()
    # Then the app read every byte, and the connection stayed usable
    expected = {"length": size, "sha256": hashlib.sha256(body).hexdigest()}
    assert answers == [expected, expected]


def test_a_chunked_body_over_the_limit_is_refused_413(tmp_path: Path) -> None:
    with gunicorn("slow_wsgi:create_app()", tmp_path, MAX_REQUEST_BYTES="1000") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            pieces = [b"x" * 600, b"x" * 600]
            connection.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
            response = connection.getresponse()
            assert (response.status, response.getheader("Connection")) == (413, "close")
        finally:
            connection.close()


def test_probes_skip_the_queue_when_every_request_slot_is_busy(tmp_path: Path) -> None:
    # Given a worker that runs 2 requests at once, both busy with slow requests
    started = tmp_path / "slow-request-started"
    env = {"GUNICORN_THREADS": "2", "SLOW_STARTED_FILE": str(started)}
    with (
        gunicorn("slow_wsgi:create_app()", tmp_path, **env) as server,
        ThreadPoolExecutor(max_workers=3) as pool,
    ):
        busy = [pool.submit(get, server.port, "/slow") for _ in range(3)]
        time.sleep(0.5)
        # Then the probes still answer at once, while a third request waits for a slot
        assert_probes_answer_in_time(server)
        assert sum(future.done() for future in busy) == 0
        assert {future.result(timeout=10)[0] for future in busy} == {200}


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET /\x01 HTTP/1.1\r\n\r\n", 400, "Bad Request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI Too Long"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "Request Header Fields Too Large",
        ),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
            431,
            "Request Header Fields Too Large",
        ),
    ],
    ids=["bad-request-line", "uri-too-long", "header-too-large", "too-many-headers"],
)
def test_errors_gunicorn_answers_itself_are_json(
    tmp_path: Path, request_bytes: bytes, status: int, reason: str
) -> None:
    with (
        gunicorn("backend_api:create_app()", tmp_path) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        # When a malformed or oversized request arrives
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # Then the answer is the app's JSON error shape, with the status gunicorn chose
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == f"HTTP/1.1 {status} {reason}"
    assert "Content-Type: application/json" in lines
    assert json.loads(body) == {"error": {"status": status, "message": reason}}


def test_the_probes_that_skip_the_queue_are_the_apps_probe_routes() -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "test"})
    health_routes = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("health.")}
    assert health_routes == PROBE_PATHS
