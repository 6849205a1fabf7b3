"""Per-request costs in one process, without a server or sockets (run by workers.py).

    python bench/costs.py     with PYTHONPATH=<an app/ directory>, working directory the same

Prints one JSON line: microseconds per access-log line (the logger gunicorn.conf.py
configures, called as gunicorn's worker calls it, writing to /dev/null) and per request
through the app's WSGI callable (request-id handling included). Run once with this
checkout's app/ and once with an earlier commit's, the two lines compare the code alone.
"""

from __future__ import annotations

import datetime
import json
import os
import runpy
import time
from typing import Any

from gunicorn.config import Config  # type: ignore[import-untyped]
from werkzeug.test import EnvironBuilder

LINES = 20_000
REQUESTS = 5_000
HEADERS = {
    "Host": "api.example.com",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate, br",
    "X-Request-ID": "edge-7f3a9c2e1b",
    "X-Forwarded-For": "203.0.113.7",
}


class Response:  # what gunicorn's worker hands its logger
    status = "200 OK"
    sent = 70
    headers = (("Content-Type", "application/json"), ("X-Request-ID", "edge-7f3a9c2e1b"))


class Request:
    headers = tuple((k.upper(), v) for k, v in HEADERS.items())


def best_of(repeats: int, count: int, call: Any) -> float:
    """Microseconds per call: the best of `repeats` timings of `count` calls."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            call()
        timings.append((time.perf_counter() - start) / count * 1e6)
    return min(timings)


def main() -> None:
    os.environ.setdefault("FLASK_SECRET_KEY", "fake-bench-secret")
    settings = runpy.run_path("gunicorn.conf.py")
    cfg = Config()
    for name, value in settings.items():
        if name in cfg.settings:
            cfg.set(name, value)
    # Both loggers write to stdout; here stdout is /dev/null, so only the CPU is measured.
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)
    try:
        logger = cfg.logger_class(cfg)
        environ = EnvironBuilder(path="/api/v1/info", headers=HEADERS).get_environ()
        environ |= {"RAW_URI": "/api/v1/info", "backend_api.request_id": "edge-7f3a9c2e1b"}
        took = datetime.timedelta(microseconds=1234)
        access_us = best_of(5, LINES, lambda: logger.access(Response, Request, environ, took))

        import backend_api

        app = backend_api.create_app()

        def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
            return None

        def request() -> None:
            b"".join(app(dict(environ), start_response))

        request_us = best_of(5, REQUESTS, request)
    finally:
        os.dup2(saved, 1)
    print(json.dumps({"access_line_us": access_us, "request_us": request_us}))


if __name__ == "__main__":
    main()
