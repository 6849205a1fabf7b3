"""How gunicorn runs the app: worker counts and requests per worker from the CPU limit.

Pure functions, so gunicorn.conf.py, the tests and the benchmarks compute the same numbers.

Why this formula (gevent workers, backend_api/worker.py):
- A Python process runs Python code on one core at a time (the GIL), so CPU-bound work needs
  one worker per core of the limit: ``workers = ceil(cpu_limit)``, at least 1. Rounding up
  lets 1.5 cores be used fully; rounding down would leave half a core idle. The limit, not
  os.cpu_count(), which counts the node's cores and can be many times what the pod may use:
  extra workers would only cost memory and be throttled by the CFS quota.
- Requests to a backend mostly wait on I/O (database, other services); one worker overlaps
  those waits by running several requests at once. ``threads`` is that number: requests one
  worker runs in the app at once, whatever the worker model (the database pool is sized from
  it). 32 serves a 20 ms database call at c=64 about 8x faster than the 4 threads it replaces
  (BENCHMARKS.md) while two pods' pools stay under PostgreSQL's default 100 connections.
"""

import math
from collections.abc import Mapping
from typing import Final, NamedTuple

# The CPU limit assumed when the pod does not pass one, as a 1-core container.
DEFAULT_CPU_LIMIT_MILLICORES: Final = 1000
THREADS_PER_WORKER: Final = 32


class Concurrency(NamedTuple):
    workers: int
    threads: int


def concurrency(cpu_limit_millicores: int) -> Concurrency:
    """Workers and threads per worker for a CPU limit in millicores (1000 = one core)."""
    if cpu_limit_millicores < 1:
        raise ValueError(f"cpu_limit_millicores must be >= 1, got {cpu_limit_millicores}")
    return Concurrency(workers=math.ceil(cpu_limit_millicores / 1000), threads=THREADS_PER_WORKER)


def concurrency_from_env(environ: Mapping[str, str]) -> Concurrency:
    """``concurrency()`` of CPU_LIMIT_MILLICORES, else of CPU_REQUEST_MILLICORES (a pod without
    a CPU limit: the CPU it is sure to get), overridden by WEB_CONCURRENCY (workers) and
    GUNICORN_THREADS (threads) when they are set."""
    request = env_int(environ, "CPU_REQUEST_MILLICORES", DEFAULT_CPU_LIMIT_MILLICORES)
    cpu = env_int(environ, "CPU_LIMIT_MILLICORES", request)
    derived = concurrency(cpu)
    return Concurrency(
        workers=env_int(environ, "WEB_CONCURRENCY", derived.workers),
        threads=env_int(environ, "GUNICORN_THREADS", derived.threads),
    )


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """The positive integer in ``environ[name]``, or ``default`` when unset or empty.

    Empty counts as unset because a Kubernetes env entry can carry an empty value.
    """
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value
