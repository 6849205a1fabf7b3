"""The schema migration command the image ships: ``python -m backend_api.migrate COMMAND``.

- ``upgrade``: migrate the database to the head revision this code carries (Alembic,
  app/migrations). Idempotent: at head, it changes nothing. Safe when several run at once: a
  PostgreSQL advisory lock lets one migrate while the others wait, then find the work done.
- ``check``: exit 0 only when the database is at this code's head revision.
- ``wait``: poll until the database is at this code's head (or newer), logging while it waits,
  for at most ``--timeout`` seconds: the pods' init container, so no pod serves on an old schema.

A database that is *ahead* (its revision is one this code does not know) was migrated by a newer
release: ``upgrade`` leaves it alone and ``wait`` lets the pod start, since expand/contract
migrations keep the previous release working on the new schema (that is what makes a rollback
work). ``check`` still exits 1 there: it answers "is it exactly at my head".

Every line on stdout is JSON, like the app's. DATABASE_URL comes from the same sources as the
app's (SECRETS_DIR files, FLASK_DATABASE_URL; see config.py); without one, as the app runs
without a database, ``upgrade`` and ``wait`` have nothing to do and exit 0 with a warning.
Exit codes: 0 done, 1 not at head or the migration failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Config
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from backend_api import config, db, logs

# app/migrations, beside the package, in the image (/app/migrations) as in the repository.
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
# One advisory lock key for this app's migrations (any fixed 64-bit number; this one spells
# "backmigr" in ASCII).
LOCK_KEY: Final = 0x6261636B6D696772
# A migration statement waits at most this long for a table lock, so an ALTER TABLE queued
# behind a long transaction does not stall every query queued behind it; the Job retries.
DDL_LOCK_TIMEOUT_MS: Final = 10_000
LOG_EVERY_SECONDS: Final = 5.0

log = logging.getLogger("backend_api.migrate")


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head() -> str:
    """The single head revision this code expects (branches are not allowed)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise CommandError(f"the migrations must have one head, found {sorted(heads)}")
    return heads[0]


def state(connection: Connection) -> tuple[str, str | None]:
    """("head" | "behind" | "ahead", the database's revision or None when empty)."""
    current = MigrationContext.configure(connection).get_current_heads()
    connection.commit()
    expected = head()
    if current == (expected,):
        return "head", expected
    revision = ",".join(current) if current else None
    script = ScriptDirectory.from_config(alembic_config())
    known = {r.revision for r in script.walk_revisions()}
    if current and not set(current) <= known:
        return "ahead", revision
    return "behind", revision


def upgrade(url: str, *, lock_timeout: float) -> int:
    engine = db.make_engine(
        url,
        pool_size=1,
        statement_timeout_ms=0,  # a data migration may take long; activeDeadlineSeconds bounds it
        application_name="backend_api migrate",
    )
    try:
        with engine.connect() as connection:
            return _upgrade_locked(connection, lock_timeout)
    finally:
        engine.dispose()


def _upgrade_locked(connection: Connection, lock_timeout: float) -> int:
    _acquire_lock(connection, lock_timeout)
    try:
        where, revision = state(connection)
        if where == "head":
            log.info("the database is already at head %s: nothing to do", revision)
            return 0
        if where == "ahead":
            log.warning(
                "the database is at %s, which this code does not know: a newer release "
                "migrated it; leaving it alone",
                revision,
                extra={"current": revision, "head": head()},
            )
            return 0
        log.info(
            "migrating from %s to %s",
            revision or "an empty database",
            head(),
            extra={"current": revision, "head": head()},
        )
        connection.execute(text(f"SET lock_timeout = {DDL_LOCK_TIMEOUT_MS}"))
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        connection.commit()
        log.info("the database is at head %s", head(), extra={"head": head()})
        return 0
    finally:
        # On failure Alembic's transaction rolled back: no half-migrated schema. Closing
        # the session would free the lock too; unlocking says so explicitly.
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        connection.commit()


def _acquire_lock(connection: Connection, timeout: float) -> None:
    """The session-level advisory lock, polled so the wait is logged and bounded."""
    deadline = time.monotonic() + timeout
    next_log = time.monotonic()
    while True:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY})
        locked = bool(got.scalar())
        connection.commit()
        if locked:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"another migration held the lock for more than {timeout:g} s")
        if time.monotonic() >= next_log:
            log.info("waiting for the migration lock: another migration is running")
            next_log = time.monotonic() + LOG_EVERY_SECONDS
        time.sleep(0.5)


def check(url: str) -> int:
    engine = db.make_engine(url, pool_size=1, application_name="backend_api check")
    try:
        with engine.connect() as connection:
            where, revision = state(connection)
    finally:
        engine.dispose()
    extra = {"current": revision, "head": head(), "state": where}
    if where == "head":
        log.info("the database is at head %s", revision, extra=extra)
        return 0
    log.error(
        "the database is at %s, not at head %s", revision or "no revision", head(), extra=extra
    )
    return 1


def wait(url: str, *, timeout: float, interval: float) -> int:
    engine = db.make_engine(url, pool_size=1, application_name="backend_api wait")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    where, revision = state(connection)
                reason = f"the database is at {revision or 'no revision'}"
            except SQLAlchemyError as error:
                where, revision = "unreachable", None
                reason = f"the database is unreachable: {db.reason(error)}"
            extra = {"current": revision, "head": head(), "state": where}
            if where == "head":
                log.info("the database is at head %s", revision, extra=extra)
                return 0
            if where == "ahead":
                log.warning(
                    "the database is at %s, newer than this code's head %s: starting",
                    revision,
                    head(),
                    extra=extra,
                )
                return 0
            if time.monotonic() >= deadline:
                log.error(
                    "gave up after %g s: %s, this image expects %s",
                    timeout,
                    reason,
                    head(),
                    extra=extra,
                )
                return 1
            log.info(
                "waiting for the schema: %s, this image expects %s", reason, head(), extra=extra
            )
            time.sleep(interval)
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend_api.migrate", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate to this code's head revision")
    up.add_argument(
        "--lock-timeout", type=float, default=600, help="seconds to wait for a running migration"
    )
    commands.add_parser("check", help="exit 0 only when the database is at this code's head")
    waiting = commands.add_parser("wait", help="wait until the database is at head (or newer)")
    waiting.add_argument("--timeout", type=float, default=600, help="give up after (s)")
    waiting.add_argument("--interval", type=float, default=2, help="seconds between checks")
    args = parser.parse_args(argv)

    settings = Config(str(MIGRATIONS_DIR))
    logs.configure_logger(logging.getLogger())
    try:
        config.load(settings)
        logging.getLogger().setLevel(config.log_level(settings["LOG_LEVEL"]))
        url = settings["DATABASE_URL"]
        if url:
            db.sqlalchemy_url(url)
    except config.ConfigError as error:
        log.critical("%s", error)
        return 2
    if not url:
        # The app runs without a database too (no items, /readyz checks nothing): with nothing
        # to migrate, the Job and the init container must not hold the pods back forever.
        log.warning(
            "DATABASE_URL is not set (the file DATABASE_URL in SECRETS_DIR, or "
            "FLASK_DATABASE_URL): there is no database to %s",
            "check" if args.command == "check" else "migrate or wait for",
        )
        return 1 if args.command == "check" else 0
    try:
        if args.command == "upgrade":
            return upgrade(url, lock_timeout=args.lock_timeout)
        if args.command == "check":
            return check(url)
        return wait(url, timeout=args.timeout, interval=args.interval)
    except (SQLAlchemyError, CommandError, TimeoutError) as error:
        # The full traceback, as one JSON line: a failed Job's log must say why.
        log.critical("%s failed: %s", args.command, db.reason(error), exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
