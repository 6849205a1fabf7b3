"""A small HTTP load generator for when wrk is not installed (smoke runs, CI).

    python bench/pyload.py URL CONNECTIONS SECONDS MAX_REQUESTS

Each connection is a thread with one keep-alive HTTP/1.1 connection, sending GETs back to back
until the time or the request budget runs out. Prints the same JSON line as wrk_report.lua.
Slower than wrk (the GIL), so its numbers are only good for checking that the bench works.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main(url: str, connections: int, seconds: float, max_requests: int) -> None:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0}
    deadline = time.monotonic() + seconds

    def budget_left() -> bool:
        with lock:
            return len(latencies) + counts["errors"] < max_requests

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=5)
        while time.monotonic() < deadline and budget_left():
            start = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["errors"] += 1
                connection.close()  # reconnects on the next request
                continue
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if not 200 <= response.status < 400:
                    counts["non_2xx"] += 1
            if response.will_close:  # e.g. gunicorn's sync worker closes after every response
                connection.close()
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 10)
    duration = time.perf_counter() - started

    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1e3

    report = {
        "requests": len(latencies),
        "duration_s": duration,
        "errors": counts["errors"],
        "non_2xx": counts["non_2xx"],
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "max_ms": ordered[-1] * 1e3,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
