"""Probe endpoints: /startupz and /livez answer while the process works; /readyz also needs the
configured PostgreSQL to answer SELECT 1 (a real server), and recovers by itself after an outage."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend_api import create_app, db
from tests.postgres import PostgresServer


@pytest.fixture
def database_app(database_url: str) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    yield app
    db.dispose(app)


def client_with_database_on(port: int) -> FlaskClient:
    url = f"postgresql://app:pw@127.0.0.1:{port}/app"
    return create_app({"TESTING": True, "DATABASE_URL": url}).test_client()


def test_startup_probe_is_ok_once_the_app_is_built(client: FlaskClient) -> None:
    response = client.get("/startupz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_liveness_is_ok(client: FlaskClient) -> None:
    response = client.get("/livez")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readiness_is_ok_without_a_database(client: FlaskClient) -> None:
    # Given no DATABASE_URL, when readiness is probed, then there is nothing to wait for
    response = client.get("/readyz")
    assert (response.status_code, response.json) == (200, {"status": "ok", "checks": {}})


def test_readiness_is_ok_when_the_database_answers(database_app: Flask) -> None:
    response = database_app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok"}}


def test_readiness_fails_fast_when_the_database_is_unreachable(closed_port: int) -> None:
    client = client_with_database_on(closed_port)

    started = time.monotonic()
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json == {"status": "fail", "checks": {"database": "fail"}}
    assert time.monotonic() - started < 2  # within the kubelet's probe timeout


def test_readiness_fails_when_a_listener_is_not_a_database(listening_port: int) -> None:
    # A port that accepts TCP but never answers the PostgreSQL handshake: not ready, bounded
    started = time.monotonic()
    response = client_with_database_on(listening_port).get("/readyz")

    assert response.status_code == 503
    assert time.monotonic() - started < 5


def test_liveness_ignores_an_unreachable_database(closed_port: int) -> None:
    # Given a database that is down, when liveness is probed, then the process is still alive:
    # restarting the pod would not bring the database back
    response = client_with_database_on(closed_port).get("/livez")
    assert response.status_code == 200


def test_readiness_is_cached_briefly_then_follows_the_database(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # A longer window than the shipped 2 s, so a slow server stop cannot outlast it
    window = 5.0
    monkeypatch.setattr(db, "READINESS_CACHE_SECONDS", window)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    checked = time.monotonic()

    postgres.stop()
    try:
        cached = client.get("/readyz").status_code
        assert time.monotonic() - checked < window, "the server took the whole window to stop"
        time.sleep(max(0.0, checked + window - time.monotonic()))
        down = client.get("/readyz").status_code
        live = client.get("/livez").status_code
    finally:
        postgres.start()
    time.sleep(window)
    back = client.get("/readyz").status_code
    db.dispose(app)

    assert (cached, down, live, back) == (200, 503, 200, 200)
