"""How gunicorn runs the app: worker counts and requests per worker from the CPU limit, and
the garbage collector of each worker.

Pure functions (but the last), so gunicorn.conf.py, the tests and the benchmarks compute the
same numbers.

Why this formula (gevent workers, backend_api/worker.py):
- A Python process runs Python code on one core at a time (the GIL), so CPU-bound work needs
  one worker per core of the limit: ``workers = ceil(cpu_limit)``, at least 1. Rounding up
  lets 1.5 cores be used fully; rounding down would leave half a core idle. The limit, not
  os.cpu_count(), which counts the node's cores and can be many times what the pod may use:
  extra workers would only cost memory and be throttled by the CFS quota.
- Requests to a backend mostly wait on I/O (database, other services); one worker overlaps
  those waits by running several requests at once. ``threads`` is that number: requests one
  worker runs in the app at once, whatever the worker model; each has a database connection
  of its own (the pool is sized from it), so none waits for one inside the app. That matters
  under gevent: SQLAlchemy's pool queue is not first come, first served (a connection freed
  goes to whoever asks next, not to the longest waiter), and 32 requests sharing 8
  connections had a p99 of 2.3 s at c=64; the worker's own queue is in arrival order.
- 8 by default: measured on one core against the items API and a real PostgreSQL, once the
  garbage collector was tuned (below), 8 against 16 over 17-21 interleaved runs of 6-10 s
  each: at c=16 the p99 of create was 45 ms against 57 (list: 45 against 52) at the same
  req/s, and at c=64 both served alike. With 16 at once every request shares the core with
  15 others and the slowest finish later; with 8 the other 8 wait in arrival order, as in a
  thread-per-request server (2 gthread x 8: 47 ms). Connections are PostgreSQL's scarce
  resource (max_connections is 100 by default) and pods multiply them: a one-core pod opens
  8 + 1 for readiness, so 10 pods fit the default, and the construct's default 2 pods (3 in
  a rollout) open 27. More pods need DB_POOL_SIZE (below) or a larger max_connections (or
  PgBouncer). The price is paid by an API whose requests wait long on
  I/O: 8 requests waiting 20 ms serve at most 8 / 20 ms = 400 req/s per worker (measured:
  362; 16 served 730): such an API raises GUNICORN_THREADS, and max_connections with it.
- DB_POOL_SIZE caps the connections per worker, for a database that allows fewer: threads
  never exceed it, so the requests beyond wait in the worker's queue, in order, and none
  fails for want of a connection.
"""

import gc
import math
from collections.abc import Mapping
from typing import Final, NamedTuple

# The CPU limit assumed when the pod does not pass one, as a 1-core container.
DEFAULT_CPU_LIMIT_MILLICORES: Final = 1000
THREADS_PER_WORKER: Final = 8
# Connections per worker when only GUNICORN_THREADS is raised: a worker model serving hundreds
# of requests at once (GUNICORN_THREADS=500) still opens at most this many.
POOL_SIZE_MAX: Final = 32
# Net allocations of tracked objects that start a young collection (CPython's default: 700).
GC_YOUNG_THRESHOLD: Final = 10_000


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
    GUNICORN_THREADS (threads) when they are set; threads never exceed the database
    connections per worker, DB_POOL_SIZE (default: threads, at most POOL_SIZE_MAX)."""
    request = env_int(environ, "CPU_REQUEST_MILLICORES", DEFAULT_CPU_LIMIT_MILLICORES)
    cpu = env_int(environ, "CPU_LIMIT_MILLICORES", request)
    derived = concurrency(cpu)
    threads = env_int(environ, "GUNICORN_THREADS", derived.threads)
    connections = env_int(environ, "DB_POOL_SIZE", min(threads, POOL_SIZE_MAX))
    return Concurrency(
        workers=env_int(environ, "WEB_CONCURRENCY", derived.workers),
        threads=min(threads, connections),
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


def tune_garbage_collector() -> None:
    """Called in each worker once the app is loaded (gunicorn.conf.py, post_worker_init).

    CPython starts a young collection after 700 net allocations of tracked objects. The
    objects of requests in flight count until they end, so 16 requests waiting on the database
    (the default then) crossed it every few requests: each young collection promoted objects
    that were merely waiting, and about every 600 requests a full collection walked the whole
    heap (88,000 objects, most of them the modules and the app: 30-65 ms on one core,
    measured) while every request in flight stood still, the p99 of the items API. Now:
    - what exists once the app is loaded is collected once and frozen: no later collection
      walks it again (a full one then walks only what came after, a few thousand objects);
    - young collections start at GC_YOUNG_THRESHOLD net allocations, more than the requests a
      worker runs at once hold between them, so they collect garbage (reference cycles)
      instead of promoting live requests. Cyclic garbage waits at most that many allocations
      (a few MiB) before it is freed.
    Measured on the items API with a real PostgreSQL (BENCHMARKS.md, database): full
    collections while serving went from 25 (1.1 s in all) to none, young ones from 3,200 to
    18, and the p99 at c=16 from 60-118 ms to 35-64 ms.
    """
    gc.collect()
    gc.freeze()
    _young, *older = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *older)
