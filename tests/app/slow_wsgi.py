"""Test-only WSGI entry point: the real app plus a slow route, so production code has none.

gunicorn loads it as ``slow_wsgi:create_app()`` in test_gunicorn_server.py.
"""

import os
import time
from pathlib import Path

from flask import Flask

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

    return app
