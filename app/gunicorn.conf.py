"""gunicorn settings for the backend API container (`gunicorn --config gunicorn.conf.py`).

Every value that differs between pods comes from the environment the pod sets, with a safe
default, so the image behaves the same under Kubernetes, `docker run` and the tests.
gunicorn reads only the names it knows from this module; the others are helpers.
"""

import os

from backend_api.config import DEFAULTS, log_level, max_request_bytes
from backend_api.logs import JsonFormatter
from backend_api.serving import concurrency_from_env, env_int, tune_garbage_collector

# --- Listening ------------------------------------------------------------------------------
# Every interface inside the pod's network namespace: the Service reaches the pod IP.
bind = f"0.0.0.0:{env_int(os.environ, 'PORT', 8000)}"

# --- Workers --------------------------------------------------------------------------------
# One worker process per core of the CPU limit, each an event loop (gevent): a client that is
# slow or silent while it sends its request costs a greenlet and a socket, not a thread, so it
# cannot starve the probes or the other clients. The options, measured side by side
# (BENCHMARKS.md section 5, 200 slowloris connections for 20 s, then c=64 without them):
# - the previous 1 gthread x 4: no probe answered, 0 req/s for everyone else;
# - more threads (1 gthread x 256) survives 200, but 257 connections would starve it again,
#   and threads cost CPU-bound p99 at normal load (1 x 32: p99 3x ours, GIL contention);
# - a header-read timeout (gunicorn has none; a thread would wait it out per connection) and
#   probes on a port of their own would keep the pod alive while its clients starve;
# - gunicorn's own gevent worker survives, but serves a fast client again and again while
#   others wait (p99 6x ours, slowest probe 0.8 s), which worker.py fixes.
# gevent also suits an I/O-bound API: while a request waits on the database (psycopg 3 waits
# cooperatively under gevent) the worker serves others: a 20 ms wait at c=64 ran 2x the
# req/s of 1 gthread x 4 with 8 requests at once, 4x with 16. backend_api/worker.py adds what
# gunicorn's gevent worker lacks: a cap on requests in the app, bodies read before a request
# takes a slot, fairness, a quick stop, JSON error pages and recycling by memory.
worker_class = "backend_api.worker.Worker"
# `threads`: requests one worker runs in the app at once (the others wait for a slot; the
# probes do not). The database pool is sized from it (serving.concurrency_from_env).
workers, threads = concurrency_from_env(os.environ)
# Open connections per worker: kept-alive, slow or idle ones included. A slow client holds one
# for at most `keepalive` seconds while it sends its request head, and a connection past this
# cap closes the one that has waited longest on its client; the worker accepts a few more for
# the probes alone (worker.py, PROBE_CONNECTIONS).
worker_connections = 1000


# Once the app is loaded, in each worker: the garbage collector tuned for requests in flight
# (serving.tune_garbage_collector). For every worker class, so the models BENCHMARKS.md
# compares differ only in the model.
def post_worker_init(worker):
    tune_garbage_collector()


# On SIGTERM, in-flight requests get this long to finish before their workers are killed.
# The Kubernetes construct derives terminationGracePeriodSeconds from the same variable.
graceful_timeout = env_int(os.environ, "GRACEFUL_TIMEOUT", 25)

# A worker whose event loop has not checked in for 30 s is wedged (a request that computed for
# 30 s without yielding): kill and replace it. Not a per-request limit for requests that wait.
timeout = 30

# Longer than the 60 s idle timeout of the proxies usually in front (ingress-nginx, cloud load
# balancers), so they close idle connections first; if gunicorn did, a request the proxy sends
# on a connection that is closing at that moment would fail with a 502. Idle connections cost
# a greenlet and a socket, and on SIGTERM the worker closes them after 2 s (worker.py).
keepalive = 75

# No recycling by request count (gunicorn's max_requests): with one worker per core, each
# recycle left the pod without a serving worker while the new one booted (p99 +20 ms at
# 20,000). A worker restarts itself only when its memory outgrows its share of the container's
# limit (backend_api/worker.py), which without a leak is never; BENCHMARKS.md measures the
# growth, and the kubelet's OOM kill remains the last bound.
max_requests = 0

# --- Request limits: one size, FlaskBackend's max_request_bytes (MAX_REQUEST_BYTES) --------------
# The body: Flask answers 413 beyond it (backend_api/config.py), from the Content-Length, before
# reading it. The head: gunicorn refuses a request line or a header field larger than that too,
# within its own maxima (4094 and 8190 bytes, its defaults), so no part of a request may exceed
# what the ingress controller and the app accept.
_max_request_bytes = max_request_bytes(os.environ)
limit_request_line = min(4094, _max_request_bytes)
limit_request_field_size = min(8190, _max_request_bytes)

# --- A read-only root filesystem --------------------------------------------------------------
# /tmp is the only writable path (a memory-backed emptyDir): the worker heartbeat file lives
# there, and a memory filesystem keeps its fchmod calls from blocking on disk.
worker_tmp_dir = "/tmp"  # noqa: S108
# No control socket: it would be created under $HOME, which is read-only here, and nothing in
# a pod runs `gunicornc`. Kubernetes scales and restarts pods; a socket that changes the worker
# count at runtime would only make a pod differ from its manifest.
control_socket_disable = True

# --- Proxies --------------------------------------------------------------------------------
# Trust X-Forwarded-* only from the proxies the pod names; unset keeps gunicorn's default
# (127.0.0.1 and ::1), under which no other host can claim to be the proxy.
if os.environ.get("FORWARDED_ALLOW_IPS"):
    forwarded_allow_ips = os.environ["FORWARDED_ALLOW_IPS"]

# --- Logs: JSON lines on stdout, as the app's own (backend_api/logs.py) -------------------------
# The access log skips Python's logging: GunicornLogger writes each line directly (logs.py).
logger_class = "backend_api.logs.GunicornLogger"
accesslog = "-"
errorlog = "-"
# The ConfigMap's LOG_LEVEL arrives as FLASK_LOG_LEVEL: one knob for the app and gunicorn.
loglevel = log_level(os.environ.get("FLASK_LOG_LEVEL") or str(DEFAULTS["LOG_LEVEL"])).lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    # Other libraries' records propagate to the root logger, so they are JSON lines as well.
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
    },
}

# --- Metrics (backend_api/metrics.py) ---------------------------------------------------------
# On when the pod sets METRICS_PORT: the master empties PROMETHEUS_MULTIPROC_DIR and serves
# /metrics from a thread of its own (a busy worker cannot delay a scrape); the workers write their
# counters to that directory; the master counts the workers it replaces, and why. The module is
# imported only then, and by the hooks, so a pod without metrics runs none of it.
_metrics_server = None


def when_ready(server):
    global _metrics_server
    if metrics_enabled:
        from backend_api import metrics

        _metrics_server = metrics.start_master(os.environ)


def post_fork(server, worker):
    if metrics_enabled:
        from backend_api import metrics

        metrics.close_server_in_worker(_metrics_server)


def worker_exit(server, worker):
    if metrics_enabled:
        from backend_api import metrics

        metrics.write_exit_reason(worker)


def child_exit(server, worker):
    if metrics_enabled:
        from backend_api import metrics

        metrics.record_exit(server, worker)


metrics_enabled = bool(os.environ.get("METRICS_PORT"))
