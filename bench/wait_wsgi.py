"""Benchmark-only WSGI entry point: the real app plus /wait, a stand-in for a database call.

The shipped app has no such route. `/wait` sleeps WAIT_SECONDS the way a query waits on its
socket: time.sleep releases the GIL under gthread and yields to other greenlets under gevent
(psycopg 3 waits cooperatively under gevent too, from 3.1.14 on).
"""

import time

from flask import Flask

import backend_api

WAIT_SECONDS = 0.020


def create_app() -> Flask:
    app = backend_api.create_app()

    @app.get("/wait")
    def wait() -> dict[str, str]:
        time.sleep(WAIT_SECONDS)
        return {"status": "ok"}

    return app
