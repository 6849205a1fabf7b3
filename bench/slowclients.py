"""Slow clients against the server: do the probes and the other clients still get answers?

A slowloris client opens a connection, sends part of a request head and then one more header
line every few seconds, never the blank line that ends the head. This module holds many such
connections open for a bounded time while it probes /livez and /readyz and loads the API with
ordinary clients. Everything talks to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

PROBES = ("/livez", "/readyz")
PROBE_TIMEOUT_S = 1.0  # the kubelet's default probe timeout
PROBE_INTERVAL_S = 0.25
# One more header line this often keeps a header-read in progress. Slowloris tools wait 10-15 s;
# more often costs the server more wakeups, and fits an attack in slices of 5 s (workers.py).
TRICKLE_INTERVAL_S = 2.0
# A slow upload's body: more than the 64 KiB the server read before a request took an app slot
# until issue 24, so the request took one and waited in the app for the rest.
UPLOAD_BYTES = 100 * 1024


@dataclass
class ProbeLog:
    """Every probe answer during an attack: latency (s) or None for no answer in time."""

    samples: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, path: str, latency: float | None) -> None:
        self.samples.setdefault(path, []).append(latency)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.samples.values())

    @property
    def failed(self) -> int:
        return sum(1 for v in self.samples.values() for s in v if s is None)

    @property
    def worst_s(self) -> float:
        answered = [s for v in self.samples.values() for s in v if s is not None]
        return max(answered, default=0.0)


def probe_once(port: int, path: str, timeout: float = PROBE_TIMEOUT_S) -> float | None:
    """Seconds until a 200 for `path` on a new connection (as the kubelet does), None if not."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    elapsed = time.perf_counter() - start
    return elapsed if response.status == 200 and elapsed <= timeout else None


@contextlib.contextmanager
def slow_headers(port: int, connections: int, path: str = "/api/v1/info") -> Iterator[int]:
    """Hold `connections` slowloris connections open until the block exits; yields how many
    the server accepted. The trickle thread stops and every socket closes on exit."""
    sockets: list[socket.socket] = []
    stop = threading.Event()
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    for _ in range(connections):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(head)
        except OSError:
            break
        sockets.append(sock)

    def trickle() -> None:
        line = 0
        while not stop.wait(TRICKLE_INTERVAL_S):
            line += 1
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(f"X-Slow-{line}: 1\r\n".encode())

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield len(sockets)
    finally:
        stop.set()
        thread.join(timeout=TRICKLE_INTERVAL_S + 1)
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def slow_uploads(port: int, connections: int, path: str = "/api/v1/items") -> Iterator[int]:
    """Hold `connections` uploads open until the block exits, each a JSON body of UPLOAD_BYTES
    sent but for its last byte; yields how many the server accepted. Every socket closes on
    exit. (The server answers 408 once a body has paused 10 s: keep blocks shorter.)"""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {UPLOAD_BYTES}\r\n\r\n"
    ).encode()
    body = b'{"name": "' + b"a" * (UPLOAD_BYTES - 12) + b'"}'
    with contextlib.ExitStack() as stack:
        accepted = 0
        for _ in range(connections):
            try:
                sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), 2))
                sock.sendall(head + body[:-1])
            except OSError:
                break
            accepted += 1
        yield accepted


def probe_during(port: int, seconds: float, log: ProbeLog) -> threading.Thread:
    """Probe liveness and readiness every PROBE_INTERVAL_S for `seconds`, in a thread."""

    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in PROBES:
                log.add(path, probe_once(port, path))
            time.sleep(PROBE_INTERVAL_S)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
