"""gunicorn settings for the backend API container (`gunicorn --config gunicorn.conf.py`).

Every value that differs between pods comes from the environment the pod sets, with a safe
default, so the image behaves the same under Kubernetes, `docker run` and the tests.
gunicorn reads only the names it knows from this module; the others are helpers.
"""

import os

from backend_api.config import DEFAULTS, log_level, max_request_bytes
from backend_api.logs import ACCESS_LOGGER, JsonFormatter
from backend_api.serving import concurrency_from_env, env_int

# --- Listening ------------------------------------------------------------------------------
# Every interface inside the pod's network namespace: the Service reaches the pod IP.
bind = f"0.0.0.0:{env_int(os.environ, 'PORT', 8000)}"

# --- Workers --------------------------------------------------------------------------------
# Threads overlap I/O waits inside a worker; counts come from the CPU limit (see serving.py).
worker_class = "gthread"
workers, threads = concurrency_from_env(os.environ)

# On SIGTERM, in-flight requests get this long to finish before their workers are killed.
# The Kubernetes construct derives terminationGracePeriodSeconds from the same variable.
graceful_timeout = env_int(os.environ, "GRACEFUL_TIMEOUT", 25)

# A worker whose main loop has not checked in for 30 s is wedged: kill and replace it. With
# gthread this is not a per-request limit; the threads serve while the loop checks in.
timeout = 30

# Longer than the 60 s idle timeout of the proxies usually in front (ingress-nginx, cloud load
# balancers), so they close idle connections first; if gunicorn did, a request the proxy sends
# on a connection that is closing at that moment would fail with a 502. Idle connections cost
# a socket, not a thread, and on SIGTERM gunicorn closes them within a second.
keepalive = 75

# Recycle each worker after about 20,000 requests to bound memory growth from leaks; the jitter
# spreads the restarts so the workers of a pod do not all restart at the same moment. Not
# lower: with one worker per core, a recycle pauses that core for a worker boot, and at 1000
# it did so every half second under load, raising p99 from 44 ms to 98 ms (BENCHMARKS.md).
max_requests = 20_000
max_requests_jitter = 2_000

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
accesslog = "-"
errorlog = "-"
# The ConfigMap's LOG_LEVEL arrives as FLASK_LOG_LEVEL: one knob for the app and gunicorn.
loglevel = log_level(os.environ.get("FLASK_LOG_LEVEL") or str(DEFAULTS["LOG_LEVEL"])).lower()
# The message of an access line; JsonFormatter adds method, path, status, duration_ms,
# request_id (from the X-Request-ID response header), ... as fields of their own.
access_log_format = "%(r)s %(s)s"
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
        ACCESS_LOGGER: {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}
