"""The engine the app builds: pool sized to the worker's threads, timeouts set on every
connection, every accepted DATABASE_URL scheme reaching PostgreSQL through psycopg 3."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backend_api import create_app, db, serving


def test_the_pool_holds_one_connection_per_thread_of_the_worker(
    monkeypatch: pytest.MonkeyPatch, migrated_url: str
):
    # Given gunicorn's concurrency contract: 12 threads per worker
    monkeypatch.setenv("GUNICORN_THREADS", "12")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    app = create_app({"TESTING": True, "DATABASE_URL": migrated_url})

    pool = app.extensions["database"].pool
    assert (pool.size(), pool._max_overflow) == (12, 0)  # per worker: not x3
    db.dispose(app)


def test_the_pool_is_capped_for_workers_that_serve_hundreds_at_once(
    monkeypatch: pytest.MonkeyPatch, migrated_url: str
):
    monkeypatch.setenv("GUNICORN_THREADS", "500")

    app = create_app({"TESTING": True, "DATABASE_URL": migrated_url})

    assert app.extensions["database"].pool.size() == serving.POOL_SIZE_MAX == 32
    db.dispose(app)


def test_every_connection_has_the_statement_and_idle_timeouts(migrated_url: str):
    app = create_app({"TESTING": True, "DATABASE_URL": migrated_url})

    with app.extensions["database"].connect() as connection:
        statement = connection.execute(text("SHOW statement_timeout")).scalar()
        idle = connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()

    assert (statement, idle) == ("5s", "30s")
    assert app.extensions["database"].dialect.driver == "psycopg"
    db.dispose(app)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_each_accepted_scheme_reaches_the_database(scheme: str, migrated_url: str):
    url = scheme + migrated_url.removeprefix("postgresql")
    app = create_app({"TESTING": True, "DATABASE_URL": url})

    response = app.test_client().get("/api/v1/items")

    assert response.status_code == 200
    db.dispose(app)


def test_every_connection_bounds_its_waits_on_the_client_side(database_url: str):
    # Given the engine the app builds
    engine = db.make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            parameters = driver.info.get_parameters()
            deadline = driver.deadline_seconds
    finally:
        engine.dispose()
    # Then TCP notices a vanished server (keepalives, tcp_user_timeout) and each wait for an
    # answer has a deadline of its own, after the server's statement timeout
    assert {k: parameters.get(k) for k in ("keepalives", "tcp_user_timeout")} == {
        "keepalives": "1",
        "tcp_user_timeout": str(db.TCP_USER_TIMEOUT_MS),
    }
    assert db.STATEMENT_TIMEOUT_MS / 1000 < deadline == db.QUERY_DEADLINE_SECONDS


def test_the_readiness_check_gives_up_within_the_probe_timeout_the_construct_sets():
    from flask_backend import Probes

    assert Probes().timeout_seconds == db.PROBE_TIMEOUT_SECONDS
    assert db.READINESS_DEADLINE_SECONDS < db.PROBE_TIMEOUT_SECONDS
