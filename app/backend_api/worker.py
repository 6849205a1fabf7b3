"""The gunicorn worker the image runs: gunicorn's gevent worker with every wait bounded.

Why gevent at all is in gunicorn.conf.py (measured in BENCHMARKS.md). The changes:
- At most ``threads`` requests run in the app at once (the contract of
  ``serving.concurrency_from_env``, from which the database pool is sized), the others wait
  in arrival order (``Turnstile``) for at most SLOT_WAIT_SECONDS, then get 503 with
  Retry-After. A request takes a slot only once its whole body (up to MAX_REQUEST_BYTES) has
  arrived: a client that sends its body slowly, or not at all, holds a greenlet, never a
  slot, and is answered 408 when its body stops for BODY_IDLE_SECONDS or is not complete
  within BODY_TOTAL_SECONDS. ``100 Continue`` is sent when the body is about to be read, and
  a request whose client has left while it queued is not run.
- The probes skip the queue and never read a body. They are served on capacity ordinary
  clients cannot take: the worker accepts PROBE_CONNECTIONS beyond gunicorn's
  ``worker_connections``, and a connection past that cap makes room by closing the one that
  has waited longest on its client (idle between requests, or stalled in a head or a body);
  when none waits on its client, the newcomer may only be a probe. Readiness fails while
  every slot has been held for SLOTS_STUCK_SECONDS without one freeing (``Turnstile.stuck``),
  so the Service stops sending requests that would only queue.
- After each request the connection's greenlet yields: a client that answers fast would
  otherwise be served again and again while the others wait (p99 4x worse at c=64).
- On shutdown, every response says ``Connection: close`` (those in flight too), and
  connections waiting for their next request are closed after a short linger instead of
  holding the worker for the whole graceful timeout.
- Errors gunicorn answers itself (400, 414, 431, ...) and the worker's own (408, 503) are
  JSON like the app's (errors.py); the access log times a request from its arrival, so the
  time it queued counts (logs.py).
- It restarts itself when its memory outgrows its share of the container's limit, instead of
  every N requests (gunicorn.conf.py, max_requests).
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

import gevent  # type: ignore[import-untyped]
import gunicorn.util  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]
from gunicorn.http.body import Body, ChunkedReader  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from backend_api.config import max_request_bytes

# Served whatever the app is busy with: they are cheap and never wait on the database pool.
PROBE_PATHS: Final = frozenset({"/livez", "/readyz", "/startupz"})
# Connections accepted beyond gunicorn's worker_connections, for the probes: the kubelet opens
# one per probe, and up to three probes (startup, liveness, readiness) may overlap.
PROBE_CONNECTIONS: Final = 10
# How long a stopping worker keeps connections that wait for a request: a request a proxy
# sent just before it saw the pod leave the endpoints still gets its answer.
STOP_LINGER_SECONDS: Final = 2.0
# A request body must keep arriving (no pause longer than the idle deadline) and be whole
# within the total one. 30 s lets a 1 MiB body (the default MAX_REQUEST_BYTES) come at 35 KB/s.
BODY_IDLE_SECONDS: Final = 10
BODY_TOTAL_SECONDS: Final = 30
# Bodies up to this size are read whatever else is being read: the connection cap bounds them
# (1,000 x 64 KiB = 64 MiB at most). Larger ones share LARGE_BODIES_BYTES per worker, reserved
# at their Content-Length (MAX_REQUEST_BYTES when chunked): past it, 503 with Retry-After, so
# slow large uploads can never hold more memory than that, nor stop small requests.
SMALL_BODY_BYTES: Final = 64 * 1024
LARGE_BODIES_BYTES: Final = 32 * 1024 * 1024
# The longest a request waits for an app slot: a healthy worker hands one out in milliseconds
# (8 slots at 2,400 req/s), so a longer wait means the pod is overloaded or stuck, and another
# pod, or the same one a second later, serves the retry better.
SLOT_WAIT_SECONDS: Final = 5
# Every slot held this long with none freeing: readiness fails. Longer than any request should
# take (db.QUERY_DEADLINE_SECONDS bounds a database wait).
SLOTS_STUCK_SECONDS: Final = 10
MEMORY_CHECK_EVERY: Final = 1024  # requests between two reads of /proc/self/statm
# A worker restarts past this share of the container's memory limit, split evenly between the
# master and the workers: 256 MiB and one worker give each worker 102 MiB (it idles near 35).
MEMORY_SHARE: Final = 0.8
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class Worker(GeventWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The size of gevent's connection pool: the cap, and room for the probes.
        self.worker_connections = self.cfg.worker_connections + PROBE_CONNECTIONS

    def run(self) -> None:
        from backend_api.health import APP_SLOTS_STUCK

        # Created here, in the worker after gevent's hub is set up, not in the master.
        self.app_slots = Turnstile(self.cfg.threads, SLOT_WAIT_SECONDS, SLOTS_STUCK_SECONDS)
        self.large_bodies = Budget(LARGE_BODIES_BYTES)
        self.max_body = max_request_bytes(os.environ)
        self.connections = 0
        # Connections waiting on their client, longest first: the deadline of each, its
        # greenlet, and whether it waits for a body (else for a request head). Shed from the
        # front; on shutdown, those waiting for a head are closed.
        self.waiting: dict[gevent.Timeout, tuple[gevent.Greenlet, bool]] = {}
        # gunicorn writes its own error pages through this one function (base.Worker.
        # handle_error is its only caller); workers are forked, so the master is unchanged.
        gunicorn.util.write_error = write_json_error
        limit = memory_limit_bytes()
        self.memory_budget = (
            None if limit is None else MEMORY_SHARE * limit / (self.cfg.workers + 1)
        )
        self.served = 0
        app: Any = self.wsgi  # type: ignore[has-type]
        slots = self.app_slots

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            environ[APP_SLOTS_STUCK] = slots.stuck()  # for /readyz (health.py)
            body = app(environ, start_response)
            if not self.alive:
                # Stopping: the response head, sent next, says "Connection: close". gunicorn
                # decides that when the request arrives, so one that was queued or running at
                # SIGTERM would say keep-alive. start_response is the Response's bound method.
                start_response.__self__.force_close()
            return body

        self.wsgi = wsgi
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """One connection. Past the cap, the connection waiting longest on its client makes
        room, so a probe always finds a place (gevent's pool is PROBE_CONNECTIONS larger)."""
        self.connections += 1
        try:
            if self.connections > self.cfg.worker_connections and self.waiting:
                self._expire(next(iter(self.waiting)))
            super().handle(listener, client, addr)
        finally:
            self.connections -= 1

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        req.arrived = time.monotonic()  # the access log's duration counts from here (logs.py)
        try:
            if req.path in PROBE_PATHS:
                if body_length(req) != 0:
                    req.force_close()  # the probes read no body: never wait for one
                return super().handle_request(listener_name, req, sock, addr)
            if self.connections > self.cfg.worker_connections:
                return self._answer(req, sock, addr, 503, "Service Unavailable", retry=True)
            refused = self._read_body(req, sock)
            if refused is not None:
                return self._answer(req, sock, addr, *refused)
            queued = not self.app_slots.free or bool(self.app_slots.waiting)
            try:
                with self.app_slots:
                    # A client that just sent its request is there: only a wait can lose it.
                    if queued and client_left(sock):
                        self.log.debug("client left before its request ran: %s", req.path)
                        raise StopIteration()
                    return super().handle_request(listener_name, req, sock, addr)
            except SlotWaitTimeout:
                return self._answer(req, sock, addr, 503, "Service Unavailable", retry=True)
        finally:
            self.large_bodies.give(getattr(req, "reserved", 0))
            self.served += 1
            if self.served % MEMORY_CHECK_EVERY == 0:
                self._restart_if_too_big()
            gevent.sleep(0)  # to the back of the queue: the other connections go first

    def _read_body(self, req: Any, sock: Any) -> tuple[int, str, bool] | None:
        """Read the whole body now, under the body deadlines; the app then reads it from
        memory. Returns the answer to give instead (status, reason, retry), or None."""
        length = body_length(req)
        if length == 0:
            return None
        if length is not None and length > self.max_body:
            # The app answers 413 from the Content-Length; the body stays unread, so the
            # connection cannot serve another request, and no 100 Continue invites it.
            req._expected_100_continue = False
            req.force_close()
            return None
        reserve = self.max_body + 1 if length is None else length
        if reserve > SMALL_BODY_BYTES:
            if not self.large_bodies.take(reserve):
                req._expected_100_continue = False
                return 503, "Service Unavailable", True
            req.reserved = reserve
        if req._expected_100_continue:  # RFC 9110 10.1.1: the client waits for it to send
            gunicorn.util.write(sock, CONTINUE)
            req._expected_100_continue = False
        deadline = gevent.Timeout(BODY_TOTAL_SECONDS)
        self.waiting[deadline] = (gevent.getcurrent(), True)
        sock.settimeout(BODY_IDLE_SECONDS)  # a recv() that waits longer raises TimeoutError
        try:
            with deadline:
                body = req.body.read(self.max_body + 1)
        except gevent.Timeout as expired:
            if expired is not deadline:
                raise
            return 408, "Request Timeout", False
        except TimeoutError:
            return 408, "Request Timeout", False
        finally:
            sock.settimeout(None)
            self.waiting.pop(deadline, None)
        if len(body) > self.max_body:  # chunked, so no Content-Length told the app before
            return 413, "Content Too Large", False
        req.body = Body(io.BytesIO(body))
        return None

    def _answer(
        self, req: Any, sock: Any, addr: Any, status: int, reason: str, retry: bool = False
    ) -> None:
        """Answer without the app (JSON, like its errors), log it, and close the connection."""
        headers = [("Retry-After", "1")] if retry else []
        sent = write_json_error(sock, status, reason, "", headers)
        response = SimpleNamespace(status=f"{status} {reason}", sent=sent)
        self.log.access(response, req, request_environ(req, addr), None)
        raise StopIteration()  # gunicorn's way to end the connection (base_async.handle)

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
        short when the worker stops or a newcomer needs the connection's place."""
        timeout = gevent.Timeout(self.cfg.keepalive, False)
        self.waiting[timeout] = (gevent.getcurrent(), False)
        try:
            with timeout:
                yield
        finally:
            self.waiting.pop(timeout, None)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        gevent.spawn_later(STOP_LINGER_SECONDS, self._stop_waiting)

    def _stop_waiting(self) -> None:
        """Close the connections waiting for a request head. A body being read is not cut:
        its request began before the stop, and its deadlines bound it."""
        for timeout, (_, body) in list(self.waiting.items()):
            if not body:
                self._expire(timeout)

    def _expire(self, timeout: gevent.Timeout) -> None:
        """End a wait on a client now, as if its deadline had passed: a head read closes the
        connection silently (as at `keepalive`), a body read answers 408."""
        waiter = self.waiting.pop(timeout, None)
        if waiter is not None:
            gevent.get_hub().loop.run_callback(_throw_if_waiting, waiter[0], timeout)


def _throw_if_waiting(greenlet: gevent.Greenlet, timeout: gevent.Timeout) -> None:
    """Runs in the hub, where the greenlet is parked. Its timeout is pending only while it is
    still inside the wait (leaving the wait cancels it): never thrown into the app."""
    if timeout.pending:
        greenlet.throw(timeout)


class SlotWaitTimeout(Exception):
    """No app slot freed within the Turnstile's wait."""


class Turnstile:
    """At most ``size`` greenlets inside at once; the others enter in the order they came,
    waiting at most ``wait_seconds`` (then SlotWaitTimeout). A slot that frees goes to the
    longest waiter, never to a newcomer: gevent's Semaphore lets a greenlet that asks while
    the woken waiter has not run yet take the slot, and the waiter waits again, behind later
    arrivals: the slowest requests wait longest. No lock: a worker's greenlets share one
    thread and only switch while they wait."""

    def __init__(
        self, size: int, wait_seconds: float | None = None, stuck_seconds: float = float("inf")
    ) -> None:
        self.free = size
        self.waiting: collections.deque[Event] = collections.deque()
        self.wait_seconds, self.stuck_seconds = wait_seconds, stuck_seconds
        self.moved_at = time.monotonic()  # when a slot was last taken or freed

    def stuck(self) -> bool:
        """Every slot is held, and none has freed (nor been taken) for ``stuck_seconds``."""
        return not self.free and time.monotonic() - self.moved_at > self.stuck_seconds

    def __enter__(self) -> None:
        if self.free and not self.waiting:
            self.free -= 1
            self.moved_at = time.monotonic()
            return
        turn = Event()
        self.waiting.append(turn)
        try:
            if not turn.wait(self.wait_seconds):
                raise SlotWaitTimeout()
        except BaseException:  # timed out, or killed while waiting (the worker stopping)
            if turn.is_set():
                self.__exit__()  # the slot was handed over already: pass it on
            else:
                self.waiting.remove(turn)
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.moved_at = time.monotonic()
        if self.waiting:
            self.waiting.popleft().set()  # handed over: it never counts as free
        else:
            self.free += 1


class Budget:
    """Bytes a worker may hold for large request bodies at once."""

    def __init__(self, size: int) -> None:
        self.free = size

    def take(self, amount: int) -> bool:
        if amount > self.free:
            return False
        self.free -= amount
        return True

    def give(self, amount: int) -> None:
        self.free += amount


def body_length(req: Any) -> int | None:
    """The request body's length: 0 when it has none, None when chunked (unknown)."""
    if req.body is None or isinstance(req.body.reader, ChunkedReader):
        return None if req.body is not None else 0
    return int(getattr(req.body.reader, "length", 0))


def client_left(sock: Any) -> bool:
    """Whether the client closed its side: a peek that finds the end of the stream (or a
    reset) and no bytes. A client that half-closes after its request counts as gone, as nginx
    and Go's net/http also treat it."""
    sock.settimeout(0.0)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK) == b"")
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(None)


def request_environ(req: Any, addr: Any) -> dict[str, Any]:
    """The WSGI environ fields the access log reads, for a request the app never saw."""
    return {
        "REQUEST_METHOD": req.method,
        "RAW_URI": req.uri,
        "SERVER_PROTOCOL": "HTTP/{}.{}".format(*req.version),
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query,
        "REMOTE_ADDR": addr[0] if isinstance(addr, tuple) else str(addr),
        "HTTP_USER_AGENT": next((v for k, v in req.headers if k == "USER-AGENT"), None),
    }


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


def write_json_error(
    sock: Any, status_int: int, reason: str, mesg: str, headers: Sequence[tuple[str, str]] = ()
) -> int:
    """gunicorn.util.write_error's contract, with the app's JSON body, and extra headers for
    the worker's own answers. The message is the reason only: gunicorn's detail echoes the
    malformed input, and it is in the error log. Returns the body's length."""
    body = json.dumps({"error": {"status": status_int, "message": reason}}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    try:
        gunicorn.util.write_nonblock(sock, head + body)
    except OSError:
        return 0  # the client has gone: nothing to answer
    # The rest of the request may still be unread: closing now would send a reset that can
    # destroy the answer before the client reads it. Half-close and drain (2 s at most) first.
    gunicorn.util.close_graceful(sock)
    return len(body)
