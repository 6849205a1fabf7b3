"""Test-only WSGI entry point: the real app plus a slow route and a route that reads a request
body, so production code has neither.

gunicorn loads it as ``slow_wsgi:create_app()`` in test_gunicorn_server.py and
test_gunicorn_slow_clients.py.
"""

import hashlib
import os
import time
from pathlib import Path

from flask import Flask, request

import backend_api

SLOW_SECONDS = 2.0


def create_app() -> Flask:
    app = backend_api.create_app()

    @app.get("/slow")
    def slow() -> dict[str, str]:
        # Tell the test the request is in flight, then last long enough for SIGTERM to land.
        Path(os.environ["SLOW_STARTED_FILE"]).touch()
        time.sleep(SLOW_SECONDS)
        return {"status": "done"}

    @app.get("/sleep")
    def sleep() -> dict[str, str]:
        # Holds an app slot for ?seconds= (a request stuck on a slow dependency).
        time.sleep(float(request.args["seconds"]))
        return {"status": "done"}

    @app.post("/record")
    def record() -> dict[str, str]:
        # Leaves a trace that the request ran: ?file= is created.
        Path(request.args["file"]).touch()
        return {"status": "recorded"}

    @app.post("/echo")
    def echo() -> dict[str, int | str]:
        body = request.get_data()
        return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    return app
