"""The gunicorn worker the image runs: gunicorn's gevent worker with five changes.

Why gevent at all is in gunicorn.conf.py (measured in BENCHMARKS.md). The changes:
- At most ``threads`` requests run in the app at once (the contract of
  ``serving.concurrency_from_env``, from which the database pool is sized), the others wait
  in arrival order (``Turnstile``); the probes skip that queue, so a slow database cannot
  make the kubelet restart a healthy pod. A request's
  body (up to 64 KiB) is read before it takes a slot: a client that sends its body slowly
  holds a greenlet, not a slot.
- After each request the connection's greenlet yields: a client that answers fast would
  otherwise be served again and again while the others wait (p99 4x worse at c=64).
- On shutdown, connections waiting for their next request are closed after a short linger
  instead of holding the worker for the whole graceful timeout.
- Errors gunicorn answers itself (400, 414, 431, ...) are JSON like the app's (errors.py).
- It restarts itself when its memory outgrows its share of the container's limit, instead of
  every N requests (gunicorn.conf.py, max_requests).
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import gevent  # type: ignore[import-untyped]
import gunicorn.util  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]
from gunicorn.http.body import Body  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

# Served whatever the app is busy with: they are cheap and never wait on the database pool.
PROBE_PATHS: Final = frozenset({"/livez", "/readyz", "/startupz"})
# How long a stopping worker keeps connections that wait for a request: a request a proxy
# sent just before it saw the pod leave the endpoints still gets its answer.
STOP_LINGER_SECONDS: Final = 2.0
# Bodies up to this size are read before the request takes an app slot (larger ones stream
# while it holds one): 1,000 connections then hold at most 64 MiB of bodies between them.
BODY_PREFETCH_BYTES: Final = 64 * 1024
MEMORY_CHECK_EVERY: Final = 1024  # requests between two reads of /proc/self/statm
# A worker restarts past this share of the container's memory limit, split evenly between the
# master and the workers: 256 MiB and one worker give each worker 102 MiB (it idles near 35).
MEMORY_SHARE: Final = 0.8


class Worker(GeventWorker):  # type: ignore[misc]
    def run(self) -> None:
        # Created here, in the worker after gevent's hub is set up, not in the master.
        self.app_slots = Turnstile(self.cfg.threads)
        # The timeout of each connection waiting for a request head, and its greenlet.
        self.waiting: dict[gevent.Timeout, gevent.Greenlet] = {}
        # gunicorn writes its own error pages through this one function (base.Worker.
        # handle_error is its only caller); workers are forked, so the master is unchanged.
        gunicorn.util.write_error = write_json_error
        limit = memory_limit_bytes()
        self.memory_budget = (
            None if limit is None else MEMORY_SHARE * limit / (self.cfg.workers + 1)
        )
        self.served = 0
        super().run()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        try:
            if req.path in PROBE_PATHS:
                return super().handle_request(listener_name, req, sock, addr)
            prefetch_body(req)
            with self.app_slots:
                return super().handle_request(listener_name, req, sock, addr)
        finally:
            self.served += 1
            if self.served % MEMORY_CHECK_EVERY == 0:
                self._restart_if_too_big()
            gevent.sleep(0)  # to the back of the queue: the other connections go first

    def _restart_if_too_big(self) -> None:
        rss = rss_bytes()
        if self.memory_budget is not None and rss > self.memory_budget:
            self.log.warning(
                "worker uses %d MiB, over its %d MiB share of the memory limit: restarting",
                rss >> 20,
                int(self.memory_budget) >> 20,
            )
            self.alive = False  # gunicorn's graceful exit (as max_requests); the master forks anew

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """Wraps the read of each request head: gunicorn's `keepalive` seconds at most, cut
        short when the worker stops."""
        timeout = gevent.Timeout(self.cfg.keepalive, False)
        self.waiting[timeout] = gevent.getcurrent()
        try:
            with timeout:
                yield
        finally:
            del self.waiting[timeout]

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        gevent.spawn_later(STOP_LINGER_SECONDS, self._stop_waiting)

    def _stop_waiting(self) -> None:
        loop = gevent.get_hub().loop
        for timeout in list(self.waiting):
            loop.run_callback(self._expire, timeout)

    def _expire(self, timeout: gevent.Timeout) -> None:
        """Runs in the hub, so the connection is parked: if it still waits, its timeout fires
        now (silently, as at `keepalive`) and the connection closes without an answer."""
        greenlet = self.waiting.get(timeout)
        if greenlet is not None:
            greenlet.throw(timeout)


class Turnstile:
    """At most ``size`` greenlets inside at once; the others enter in the order they came. A
    slot that frees goes to the longest waiter, never to a newcomer: gevent's Semaphore lets
    a greenlet that asks while the woken waiter has not run yet take the slot, and the waiter
    waits again, behind later arrivals: the slowest requests wait longest. No lock: a
    worker's greenlets share one thread and only switch while they wait."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiting: collections.deque[Event] = collections.deque()

    def __enter__(self) -> None:
        if self.free and not self.waiting:
            self.free -= 1
            return
        turn = Event()
        self.waiting.append(turn)
        try:
            turn.wait()
        except BaseException:  # killed while waiting: a timeout, the worker stopping
            if turn.is_set():
                self.__exit__()  # the slot was handed over already: pass it on
            else:
                self.waiting.remove(turn)
            raise

    def __exit__(self, *exc_info: object) -> None:
        if self.waiting:
            self.waiting.popleft().set()  # handed over: it never counts as free
        else:
            self.free += 1


def prefetch_body(req: Any) -> None:
    """Read up to BODY_PREFETCH_BYTES of the request's body now; the app reads the same
    bytes (then any rest from the socket) through gunicorn's Body as before."""
    if req.body is None:
        return
    head = req.body.read(BODY_PREFETCH_BYTES)
    if head:
        req.body = Body(_Prefetched(head, req.body))


class _Prefetched:
    """A reader for gunicorn's Body: the bytes read ahead, then the rest of the body."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = io.BytesIO(head), rest

    def read(self, size: int) -> bytes:
        return self.head.read(size) or bytes(self.rest.read(size))


def memory_limit_bytes() -> int | None:
    """The container's memory limit from its cgroup (v2, else v1); None when there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        # "max" (v2) or a huge number (v1) when unlimited
        return int(text) if text.isdigit() and int(text) < 2**60 else None
    return None


def rss_bytes() -> int:
    """This process's resident memory, from /proc (a read, no system-wide scan)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's contract, with the app's JSON body. The message is the
    reason only: gunicorn's detail echoes the malformed input, and it is in the error log."""
    body = json.dumps({"error": {"status": status_int, "message": reason}}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)
    # The rest of an oversized request may still be unread: closing now would send a reset
    # that can destroy the answer before the client reads it. Half-close and drain first.
    gunicorn.util.close_graceful(sock)
