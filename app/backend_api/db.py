"""The database: a SQLAlchemy engine per gunicorn worker, sized to the worker's concurrency.

- Pool: one connection per request a worker runs at once (``threads`` from
  ``serving.concurrency_from_env``, which DB_POOL_SIZE caps), no overflow, so a pod never
  opens more than workers x (threads + 1 for readiness). A request beyond them waits (in the
  worker's queue, else in the pool's for up to POOL_TIMEOUT_SECONDS) rather than failing.
- Timeouts: a connection attempt gives up after CONNECT_TIMEOUT_SECONDS and a statement after
  STATEMENT_TIMEOUT_MS (set per session by PostgreSQL, so a stuck query frees its worker);
  a transaction left idle is ended by the server. Those are the server's: a server that
  stops answering (frozen, its host gone, the network cut) enforces nothing, so the client
  bounds its own waits too. Each wait for the server ends after QUERY_DEADLINE_SECONDS
  (``DeadlineConnection``; the connection is then closed and replaced), and TCP keepalives
  and tcp_user_timeout end a connection whose peer has vanished (TCP alone would retry for
  about 15 minutes).
- Reconnects: a pooled connection whose session PostgreSQL ended while it sat in the pool (a
  restart, a failover, pg_terminate_backend) is replaced before it is handed out, so a
  database restart costs no failed request once it is back. The check reads the socket
  without a round trip (``pool_pre_ping``'s SELECT 1 took about 8% of a worker's CPU on the
  items API, profiled with py-spy).
- Requests autocommit: each endpoint runs one statement, atomic by itself, so the app's
  engine sends no BEGIN and no COMMIT/ROLLBACK (two round trips of four per request). Code
  that needs several statements in one transaction asks for one:
  ``engine().execution_options(isolation_level="READ COMMITTED").begin()``.
- A database error that is not the request's fault answers 503 (JSON), never a 500 page.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Final

import gevent  # type: ignore[import-untyped]
import psycopg
from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

from backend_api.config import database_address
from backend_api.serving import concurrency_from_env

# Every scheme config.DATABASE_SCHEMES allows becomes psycopg 3 for SQLAlchemy.
DRIVER: Final = "postgresql+psycopg"

CONNECT_TIMEOUT_SECONDS: Final = 5
STATEMENT_TIMEOUT_MS: Final = 5_000
IDLE_IN_TRANSACTION_TIMEOUT_MS: Final = 30_000
POOL_TIMEOUT_SECONDS: Final = 30
# The client's own bound on each wait for the server: the server's statement timeout, which
# answers a slow statement with a clean error, and a second for that answer to arrive.
QUERY_DEADLINE_SECONDS: Final = STATEMENT_TIMEOUT_MS / 1000 + 1
# libpq's TCP settings (PostgreSQL docs, "Parameter Key Words"): an idle pooled connection
# whose peer vanished is found after 10 + 3 x 5 s of silence; data the peer does not
# acknowledge for TCP_USER_TIMEOUT_MS ends the connection.
KEEPALIVES: Final = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5}
KEEPALIVES_COUNT: Final = 3
TCP_USER_TIMEOUT_MS: Final = 10_000

# Readiness: the kubelet waits PROBE_TIMEOUT_SECONDS for /readyz (the construct's
# Probes.timeout_seconds default; a test holds them equal), so the database check gives up
# after half of it, connecting included: the probe gets "unready", not a timeout. The answer
# is kept briefly so frequent probes, from several workers, do not load the database.
PROBE_TIMEOUT_SECONDS: Final = 2
READINESS_DEADLINE_SECONDS: Final = PROBE_TIMEOUT_SECONDS / 2
READINESS_STATEMENT_TIMEOUT_MS: Final = 500
READINESS_CONNECT_TIMEOUT_SECONDS: Final = 2  # libpq's least; READINESS_DEADLINE cuts it short
READINESS_CACHE_SECONDS: Final = 2.0

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    """The app's tables (Alembic's autogenerate compares against ``Base.metadata``)."""


def sqlalchemy_url(url: str) -> URL:
    """DATABASE_URL as SQLAlchemy's URL for psycopg 3. The error never shows the URL: it
    usually carries a password."""
    database_address(url)  # the scheme, host and port, or ConfigError
    return make_url(url).set(drivername=DRIVER)


def make_engine(
    url: str,
    *,
    pool_size: int,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS,
    pool_timeout_seconds: float = POOL_TIMEOUT_SECONDS,
    application_name: str = "backend_api",
    query_deadline_seconds: float = QUERY_DEADLINE_SECONDS,
    **engine_options: Any,
) -> Engine:
    options = f"-c statement_timeout={statement_timeout_ms}"
    options += f" -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout_seconds,
        connect_args={
            "connect_timeout": connect_timeout_seconds,
            "options": options,
            "application_name": application_name,
            **KEEPALIVES,
            "keepalives_count": KEEPALIVES_COUNT,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        },
        **engine_options,
    )

    def connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        connection = DeadlineConnection.connect(*cargs, **cparams)
        connection.deadline_seconds = query_deadline_seconds
        return connection

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "checkout", _replace_if_ended_by_server)
    return engine


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits for the server at most ``deadline_seconds`` at a time.
    Past it the connection is closed (its protocol state is unknown) and the wait raises
    OperationalError: SQLAlchemy then discards the connection, and the request answers 503."""

    deadline_seconds: float = QUERY_DEADLINE_SECONDS

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            deadline = self.deadline_seconds if timeout is None else timeout
            return super().wait(gen, interval, deadline)
        except psycopg.errors._WaitTimeout:  # psycopg's own, raised by its wait functions
            self.close()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.deadline_seconds} s"
            ) from None


def _replace_if_ended_by_server(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """SQLAlchemy's checkout hook: DisconnectionError makes the pool open a fresh connection
    in place of this one (up to three attempts, then the request fails: 503)."""
    if ended_by_server(dbapi_connection):
        raise DisconnectionError("PostgreSQL ended this pooled session; reconnecting")


def ended_by_server(connection: psycopg.Connection[Any]) -> bool:
    """True when PostgreSQL ended this idle session: it sent a last message (FATAL:
    terminating connection) and closed the socket. An idle session receives nothing else, so
    two non-blocking reads tell, without a round trip: the first takes that message, the
    second meets the closed socket."""
    if connection.broken:
        return True
    try:
        connection.pgconn.consume_input()
        connection.pgconn.consume_input()
    except psycopg.OperationalError:
        return True
    return connection.pgconn.status != psycopg.pq.ConnStatus.OK


class ReadinessCheck:
    """``SELECT 1`` on a connection of its own, at most once per READINESS_CACHE_SECONDS per
    worker; concurrent probes share one check instead of queueing on the database."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(
            url,
            pool_size=1,
            statement_timeout_ms=READINESS_STATEMENT_TIMEOUT_MS,
            connect_timeout_seconds=READINESS_CONNECT_TIMEOUT_SECONDS,
            pool_timeout_seconds=READINESS_DEADLINE_SECONDS,
            application_name="backend_api readiness",
            query_deadline_seconds=READINESS_DEADLINE_SECONDS,
        )
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._ok = False

    def dispose(self) -> None:
        self._engine.dispose()

    def ok(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at >= READINESS_CACHE_SECONDS:
                self._ok = self._select_one()
                self._checked_at = time.monotonic()
            return self._ok

    def _select_one(self) -> bool:
        # The whole check, connecting included, under one deadline. gevent's: the app runs in
        # gevent workers, where psycopg waits cooperatively. SQLAlchemy discards a connection
        # interrupted this way.
        deadline = gevent.Timeout(READINESS_DEADLINE_SECONDS)
        try:
            with deadline, self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except gevent.Timeout as expired:
            if expired is not deadline:
                raise
            log.warning("database is not ready: no answer within %s s", READINESS_DEADLINE_SECONDS)
            return False
        except SQLAlchemyError as error:
            # The driver's message names host and user, never the password.
            log.warning("database is not ready: %s", reason(error))
            return False
        return True


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if url:
        app.extensions["database"] = make_engine(
            url,
            pool_size=concurrency_from_env(os.environ).threads,
            isolation_level="AUTOCOMMIT",
        )
        app.extensions["database_readiness"] = ReadinessCheck(url)
    app.register_error_handler(DBAPIError, _database_unavailable)


def dispose(app: Flask) -> None:
    """Close the app's database connections (tests and tools that build many apps)."""
    if "database" in app.extensions:
        app.extensions["database"].dispose()
        app.extensions["database_readiness"].dispose()


def engine() -> Engine:
    """The worker's engine; 503 when the app has no DATABASE_URL."""
    found: Engine | None = current_app.extensions.get("database")
    if found is None:
        raise ServiceUnavailable("no database is configured (DATABASE_URL)")
    return found


def _database_unavailable(error: DBAPIError) -> Response:
    # Connection lost, server restarting, statement timeout: the client may retry; the pod's
    # readiness reports the outage. Input is validated before any statement and the schema
    # has no constraint a valid request could break, so no database error is the client's.
    log.warning("database error: %s", reason(error))
    unavailable = ServiceUnavailable("the database is unavailable; retry later")
    response = current_app.handle_http_exception(unavailable)
    assert isinstance(response, Response)
    response.headers["Retry-After"] = "1"
    return response


def reason(error: BaseException) -> str:
    """The first line of the driver's message: names host and user, never the password."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__
