"""Prometheus metrics that stay true under gunicorn: sums over every worker, never reset.

prometheus_client's multiprocess mode: each process (the master and every worker) writes its
values to its own memory-mapped files in PROMETHEUS_MULTIPROC_DIR (a memory emptyDir), and a
scrape adds them up. A recycled or killed worker's counter files stay, so no counter drops when
a worker is replaced; its live gauges (in-flight requests) are removed when the master reaps it.

/metrics is served by a thread of gunicorn's master on METRICS_PORT, never by a worker: the
master serves no requests, so a scrape answers while every worker is busy or wedged, and the
request path only pays for its own counters (a few memory writes; BENCHMARKS.md measures it).

Metrics are on when METRICS_PORT is set (the construct sets it with the directory); without it
nothing here is imported and the app serves as before. The hooks below are gunicorn's
(gunicorn.conf.py calls them); ``init_app`` instruments the Flask app in each worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

PORT_ENV: Final = "METRICS_PORT"
DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
PATH: Final = "/metrics"
ROUTE_KEY: Final = "backend_api.route"  # the matched route template, in the WSGI environ

# Labels stay bounded whatever clients send: methods outside this set are "other", paths that
# match no route are "unmatched" (never the raw path: one series per scanned URL would grow
# without end).
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED: Final = "unmatched"
# From 1 ms (a cached answer) to 30 s (gunicorn's worker timeout), denser where an API's
# requests fall: 14 buckets per (method, route).
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
# Why a worker was replaced (gunicorn_worker_restarts_total's reason label).
RECYCLED, TIMEOUT, KILLED, ERROR = "recycled", "timeout", "killed", "error"

# Not in prometheus_client's default registry: a scrape reads the files (multiprocess mode),
# never the objects of one process.
REQUESTS: Final = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=None,
)
LATENCY: Final = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the app to its response, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
IN_FLIGHT: Final = Gauge(
    "http_requests_in_flight",
    "Requests being answered now, over the live workers.",
    multiprocess_mode="livesum",
    registry=None,
)
WORKER_RESTARTS: Final = Counter(
    "gunicorn_worker_restarts",
    "Workers gunicorn replaced, by reason: recycled (its own memory share or max_requests), "
    "timeout (missed its heartbeat), killed (a signal nobody in the pod sent: the OOM killer, "
    "a person), error (the worker crashed).",
    ["reason"],
    registry=None,
)
INFO: Final = Gauge(
    "backend_api_info",
    "Always 1; the app's version as a label.",
    ["version"],
    multiprocess_mode="max",
    registry=None,
)


def enabled(environ: Mapping[str, str]) -> bool:
    return bool(environ.get(PORT_ENV))


# --- gunicorn's master -------------------------------------------------------------------------


def clear_directory(directory: Path) -> None:
    """Start from nothing: files a previous container left in the emptyDir (it survives a
    container restart) would be added to this one's counters. Only the files this module and
    prometheus_client write are removed."""
    for pattern in ("*.db", "*.exit"):
        for path in directory.glob(pattern):
            path.unlink(missing_ok=True)


def start_master(environ: Mapping[str, str]) -> ThreadingWSGIServer:
    """In gunicorn's master, before any worker: an empty directory, the info series, and the
    /metrics server in a daemon thread (its listening socket is bound now: a taken port stops
    the boot with an error)."""
    import threading

    if not environ.get(DIR_ENV):
        raise RuntimeError(
            f"{PORT_ENV} is set but {DIR_ENV} is not: workers could not share metrics"
        )
    directory = Path(environ[DIR_ENV])
    clear_directory(directory)
    from backend_api import __version__

    INFO.labels(__version__).set(1)
    for reason in (RECYCLED, TIMEOUT, KILLED, ERROR):
        WORKER_RESTARTS.labels(reason)  # each series exists from the start, at 0
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    server = make_server(
        "0.0.0.0",  # noqa: S104 - the pod's own network namespace; the NetworkPolicy admits scrapers
        int(environ[PORT_ENV]),
        exposition_app(registry),
        ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def exposition_app(registry: CollectorRegistry) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"metrics are at /metrics\n"]
        body = generate_latest(registry)
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    # A scraper that connects and sends nothing holds one thread for at most this long.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged: one line every few seconds per scraper is noise."""


def record_exit(server: Any, worker: Any) -> None:
    """gunicorn's child_exit (master): forget the worker's live gauges, and count its
    replacement unless the master itself is stopping (it closes its listeners first)."""
    directory = os.environ[DIR_ENV]
    multiprocess.mark_process_dead(worker.pid, directory)  # type: ignore[no-untyped-call]
    marker = Path(directory, f"{worker.pid}.exit")
    try:
        reason: str | None = marker.read_text()
        marker.unlink()
    except OSError:
        reason = None  # the worker never reached its exit hook: a signal ended it
    if not server.LISTENERS:
        return
    if worker.aborted:  # set by the master when the worker missed its heartbeat
        WORKER_RESTARTS.labels(TIMEOUT).inc()
    elif reason is None:
        WORKER_RESTARTS.labels(KILLED).inc()
    elif reason in (RECYCLED, ERROR):
        WORKER_RESTARTS.labels(reason).inc()
    # "stopped": the master asked (a reload, fewer workers): not a restart


# --- a worker ----------------------------------------------------------------------------------


def close_server_in_worker(server: ThreadingWSGIServer | None) -> None:
    """gunicorn's post_fork: a worker inherits the master's /metrics socket; it never serves
    it, so it lets go of it."""
    if server is not None:
        server.socket.close()


def write_exit_reason(worker: Any) -> None:
    """gunicorn's worker_exit, in the worker as it leaves (not reached when a signal kills
    it): tell the master why, in a file next to the metrics."""
    if worker.nr >= worker.max_requests or _over_memory_budget(worker):
        reason = RECYCLED
    elif worker.alive:
        reason = ERROR  # it left its loop without being asked
    else:
        reason = "stopped"
    Path(os.environ[DIR_ENV], f"{worker.pid}.exit").write_text(reason)


def _over_memory_budget(worker: Any) -> bool:
    """Whether the worker left because it outgrew its memory share (backend_api/worker.py):
    it is still that big as it exits."""
    budget = getattr(worker, "memory_budget", None)
    if budget is None:
        return False
    from backend_api.worker import rss_bytes

    return bool(rss_bytes() > budget)


def init_app(app: Flask) -> None:
    """Count every request the app answers; the route template comes from Flask's routing."""
    from flask import request

    @app.before_request
    def note_route() -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    app.wsgi_app = MetricsMiddleware(app.wsgi_app)  # type: ignore[method-assign]


class MetricsMiddleware:
    """Outermost WSGI layer: in-flight, latency and the count of each request. Labelled
    children are cached, so a request costs two dict lookups and a few memory writes."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self._in_flight = IN_FLIGHT

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status = "500"  # an exception out of the app is answered 500 by gunicorn

        def start_and_note(status_line, headers, exc_info=None):  # type: ignore[no-untyped-def]
            nonlocal status
            status = status_line[:3]
            return start_response(status_line, headers, exc_info)

        self._in_flight.inc()
        try:
            return self.app(environ, start_and_note)
        finally:
            self._in_flight.dec()
            method = environ["REQUEST_METHOD"]
            if method not in METHODS:
                method = "other"
            route = environ.get(ROUTE_KEY, UNMATCHED)
            key = (method, route)
            histogram = self._histograms.get(key)
            if histogram is None:
                histogram = self._histograms[key] = LATENCY.labels(method, route)
            histogram.observe(time.perf_counter() - started)
            counter = self._counters.get((method, route, status))
            if counter is None:
                counter = self._counters[(method, route, status)] = REQUESTS.labels(
                    method, route, status
                )
            counter.inc()
