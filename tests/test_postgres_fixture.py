"""The PostgreSQL fixture the database tests stand on: a real server, isolated databases, a
restart that keeps data, and failures that show the server's own words."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from tests.postgres import MaskedUrl, PostgresServer, start_server


def test_each_test_gets_an_empty_database_owned_by_the_app_role(database_url: str):
    with psycopg.connect(database_url) as connection:
        user, tables = connection.execute(
            "SELECT current_user, (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')"
        ).fetchone()
        superuser = connection.execute("SHOW is_superuser").fetchone()

    assert (user, tables) == ("app", 0)
    assert superuser == ("off",)


def test_the_server_listens_on_loopback_only(postgres: PostgresServer):
    with psycopg.connect(postgres.url()) as connection:
        (addresses,) = connection.execute("SHOW listen_addresses").fetchone()

    assert addresses == "127.0.0.1"


def test_a_restart_keeps_the_data_and_the_port(postgres: PostgresServer, database_url: str):
    with psycopg.connect(database_url) as connection:
        connection.execute("CREATE TABLE kept (n int)")
        connection.execute("INSERT INTO kept VALUES (42)")
    port = postgres.port

    postgres.stop()
    postgres.start()

    assert postgres.port == port
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT n FROM kept").fetchone() == (42,)


def test_a_server_that_cannot_start_reports_its_log_lines():
    with pytest.raises(RuntimeError, match="shared_buffers") as failure:
        start_server({"shared_buffers": "not-a-size"})

    assert "postgres exited" in str(failure.value)


def test_a_stopped_server_leaves_no_process(postgres: PostgresServer):
    server = start_server()
    process = server.process
    assert process is not None

    server.stop()
    shutil.rmtree(server.base)

    assert process.poll() is not None


def test_a_database_url_shows_no_password_where_pytest_prints_it() -> None:
    # A failing test's report prints the arguments of each function in its traceback.
    url = MaskedUrl("postgresql://app:zq-pw-4821@127.0.0.1:5432/app")
    assert "zq-pw-4821" not in repr(url)
    assert "zq-pw-4821" not in repr({"database_url": url})
    assert repr(url) == "'postgresql://app:***@127.0.0.1:5432/app'"
    assert f"{url}" == "postgresql://app:zq-pw-4821@127.0.0.1:5432/app"  # still the URL to use
