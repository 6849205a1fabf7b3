"""Fixtures for the app's tests, after Flask's tutorial: an app built by the factory, a test
client, and an environment reset between tests."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend_api import config as app_config
from backend_api import create_app, db

# Variables that change what create_app() or gunicorn.conf.py do, besides every FLASK_*.
_SETTINGS_ENV = (
    "SECRETS_DIR",
    "PORT",
    "GRACEFUL_TIMEOUT",
    "CPU_LIMIT_MILLICORES",
    "CPU_REQUEST_MILLICORES",
    "MAX_REQUEST_BYTES",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "DB_POOL_SIZE",
    "FORWARDED_ALLOW_IPS",
    "GUNICORN_CMD_ARGS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without app or gunicorn settings: whatever the
    developer's shell or an earlier test set, the defaults apply unless the test sets a value."""
    for name in list(os.environ):
        if name.startswith("FLASK_") or name in _SETTINGS_ENV:
            monkeypatch.delenv(name)
    # Nor a /run/secrets of the machine (a container's, Docker's): the app reads it unasked.
    monkeypatch.setattr(app_config, "DEFAULT_SECRETS_DIR", Path("/nonexistent/run/secrets"))


@pytest.fixture
def app() -> Flask:
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret-key"})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections: a stand-in for a database."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a database that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A fresh database of the real PostgreSQL, migrated to head by the image's command."""
    from backend_api import migrate

    assert migrate.upgrade(database_url, lock_timeout=30) == 0
    return database_url


@pytest.fixture
def db_client(migrated_url: str) -> Iterator[FlaskClient]:
    """A client of an app on a migrated database; its pools are closed afterwards."""
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret-key", "DATABASE_URL": migrated_url}
    )
    yield app.test_client()
    db.dispose(app)
