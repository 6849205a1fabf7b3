"""Test-only WSGI entry point: the real app in a worker that believes its container's memory
limit is 1 MiB, so it is over its share at its first memory check (backend_api/worker.py).

gunicorn loads it as ``tiny_memory_wsgi:create_app()`` in test_gunicorn_server.py; the worker
builds the app before it starts serving, and reads the limit when it starts.
"""

from flask import Flask

import backend_api
from backend_api import worker


def create_app() -> Flask:
    worker.memory_limit_bytes = lambda: 1 << 20
    return backend_api.create_app()
