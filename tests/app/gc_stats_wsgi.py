"""Test-only WSGI entry point: the real app, plus ``/test/gc`` answering what the serving
worker's garbage collector did (collections per generation, since the worker started) and its
resident memory, so a test can watch the collector of a real gunicorn worker under load.

gunicorn loads it as ``gc_stats_wsgi:create_app()`` in test_gunicorn_gc.py.
"""

import gc

from flask import Flask, jsonify

import backend_api
from backend_api import worker


def create_app() -> Flask:
    app = backend_api.create_app()

    @app.get("/test/gc")
    def gc_stats():  # type: ignore[no-untyped-def]
        return jsonify(
            collections=[generation["collections"] for generation in gc.get_stats()],
            rss_bytes=worker.rss_bytes(),
        )

    return app
