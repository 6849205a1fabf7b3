"""The pool against a real PostgreSQL: more requests than connections wait for one instead of
failing; a pooled session the server ended is replaced before use; requests autocommit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import served
from flask import Flask
from sqlalchemy import text

from backend_api import create_app, db


def app_sessions(url: str) -> list[tuple[str, str]]:
    """(state, wait event type) of the app's sessions, seen from a connection of the test's."""
    return [(state, wait) for state, wait, _ in app_activity(url)]


def app_activity(url: str) -> list[tuple[str, str, bool]]:
    """..., and whether the session's transaction began with its current statement (no BEGIN
    before it)."""
    with psycopg.connect(url, autocommit=True) as observer:
        rows = observer.execute(
            "SELECT state, coalesce(wait_event_type, ''), xact_start = query_start "
            "FROM pg_stat_activity "
            "WHERE application_name = 'backend_api' AND datname = current_database()"
        ).fetchall()
    return [(state, wait, bool(alone)) for state, wait, alone in rows]


@pytest.fixture
def small_pool_app(monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> Iterator[Flask]:
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": migrated_url})
    yield app
    db.dispose(app)


def test_more_requests_than_connections_wait_for_one_instead_of_failing(
    small_pool_app: Flask, migrated_url: str
):
    # Given a pool of 2 and another session holding the items table, so that the requests
    # that got a connection keep it
    with psycopg.connect(migrated_url) as holder:
        holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        # When 8 requests run at once (threads, as gthread would run them)
        with ThreadPoolExecutor(max_workers=8) as pool:
            client = small_pool_app.test_client
            answers = [pool.submit(lambda: client().get("/api/v1/items")) for _ in range(8)]
            served.wait_for(
                lambda: [w for _, w in app_sessions(migrated_url)] == ["Lock", "Lock"],
                timeout=10,
                what="two requests waiting on the lock",
            )
            time.sleep(0.3)  # the other six have had time to fail, if they were going to
            # Then the database never sees more than the pool's 2 sessions, each running its
            # statement as a transaction of its own (autocommit: no BEGIN round trip), and
            # nobody failed
            assert [alone for _, _, alone in app_activity(migrated_url)] == [True, True]
            assert not any(answer.done() for answer in answers)
            holder.rollback()  # releases the lock
            statuses = [answer.result(timeout=20).status_code for answer in answers]

    assert statuses == [200] * 8


def test_requests_beyond_the_pool_queue_in_the_served_worker(migrated_url: str, tmp_path: Path):
    # Given the shipped gunicorn config with 2 connections per worker (DB_POOL_SIZE), though
    # GUNICORN_THREADS asks for 16 requests at once
    with (
        served.gunicorn(
            "backend_api:create_app()",
            tmp_path,
            FLASK_DATABASE_URL=migrated_url,
            GUNICORN_THREADS="16",
            DB_POOL_SIZE="2",
        ) as server,
        psycopg.connect(migrated_url) as holder,
    ):
        holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = [pool.submit(served.get, server.port, "/api/v1/items") for _ in range(16)]
            served.wait_for(
                lambda: len([w for _, w in app_sessions(migrated_url) if w == "Lock"]) == 2,
                timeout=10,
                what="two requests waiting on the lock",
            )
            time.sleep(0.3)
            # Then 2 sessions serve them and the probes still answer at once
            assert len(app_sessions(migrated_url)) == 2
            assert served.get(server.port, "/livez", timeout=2)[0] == 200
            assert served.get(server.port, "/readyz", timeout=2)[0] == 200
            holder.rollback()
            statuses = [answer.result(timeout=20)[0] for answer in answers]

    assert statuses == [200] * 16


def test_a_pooled_session_the_server_ended_is_replaced_before_use(
    small_pool_app: Flask, migrated_url: str
):
    # Given two pooled connections, idle
    engine = small_pool_app.extensions["database"]
    with engine.connect() as first, engine.connect() as second:
        pids = {first.exec_driver_sql("SELECT pg_backend_pid()").scalar() for _ in (0,)}
        pids.add(second.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    # When PostgreSQL ends both sessions (as a restart or a failover does)
    with psycopg.connect(migrated_url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    served.wait_for(lambda: not app_sessions(migrated_url), timeout=5, what="sessions to end")

    # Then the next requests, two at once, get fresh connections and succeed
    client = small_pool_app.test_client()
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: client.get("/api/v1/items").status_code, range(2)))
    assert answers == [200, 200]


def test_a_healthy_idle_connection_is_not_taken_for_ended(migrated_url: str):
    with psycopg.connect(migrated_url) as connection:
        connection.execute("SELECT 1")
        connection.rollback()
        assert db.ended_by_server(connection) is False
        assert connection.execute("SELECT 2").fetchone() == (2,)


def test_a_created_item_is_committed_by_its_request_and_the_session_left_idle(
    small_pool_app: Flask, migrated_url: str
):
    client = small_pool_app.test_client()
    assert client.post("/api/v1/items", json={"name": "kept"}).status_code == 201

    # Another session sees the row at once, and the app's sessions are idle, not in a
    # transaction (no BEGIN was sent, none is left open)
    with psycopg.connect(migrated_url, autocommit=True) as observer:
        assert observer.execute("SELECT name FROM items").fetchall() == [("kept",)]
    assert {state for state, _ in app_sessions(migrated_url)} == {"idle"}


def test_several_statements_can_still_share_a_transaction(small_pool_app: Flask):
    engine = small_pool_app.extensions["database"]
    transactional = engine.execution_options(isolation_level="READ COMMITTED")

    def insert_then_fail() -> None:
        with transactional.begin() as connection:
            connection.execute(text("INSERT INTO items (name) VALUES ('half')"))
            raise RuntimeError("the second statement failed")

    with pytest.raises(RuntimeError, match="the second statement failed"):
        insert_then_fail()

    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 0
