"""A real PostgreSQL server for the tests: Debian's packages, a throwaway cluster, 127.0.0.1 only.

After pytest-postgresql's process factory: initdb into a temp dir, the server on a free port,
readiness polled against a deadline, the server's last log lines in every failure, and a stop
that always runs (the fixture's finally; the server also dies with the test process, by
pdeathsig, when pytest itself is killed).

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the Debian
package creates (or `nobody`). Passwords are generated per run and never printed: tests get
connection URLs, not the server's internals. Under CI=true a server that cannot start fails the
run; elsewhere the tests that need it skip with the reason.

Registered as a plugin by tests/conftest.py: the `postgres` fixture (session) and
`database_url` (a fresh, empty database per test, owned by a non-superuser role).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APP_ROLE = "app"  # owns the test databases: the app and its migrations run without superuser
START_TIMEOUT_SECONDS = 30
LOG_TAIL_LINES = 30


def bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries Debian installed, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves unless we are root, else a system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MaskedUrl(str):
    """A connection URL whose repr hides its password: pytest prints the arguments of every
    function in a failing test's traceback, and no secret value belongs in test output."""

    def __repr__(self) -> str:
        scheme, _, rest = self.partition("://")
        credentials, at, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        return repr(f"{scheme}://{user}:***@{host}" if at else str(self))


@dataclass
class PostgresServer:
    """One throwaway PostgreSQL cluster. start()/stop() may be called again (a restart keeps
    the data directory and the port)."""

    bin_dir: Path
    base: Path
    port: int = field(default_factory=free_port)
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    app_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _databases: int = 0

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    def _as_server_user(self, command: list[str]) -> list[str]:
        # --pdeathsig: a killed test run (or benchmark) leaves no server behind.
        wrapper = ["setpriv", "--pdeathsig=TERM"]
        user = server_user()
        if user is not None:
            wrapper += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
        return [*wrapper, "--", *command]

    def init(self) -> None:
        user = server_user()
        if user is not None:
            os.chown(self.base, user.pw_uid, user.pw_gid)
        password_file = self.base / "pwfile"
        password_file.write_text(self.superuser_password)
        password_file.chmod(0o600)
        if user is not None:
            os.chown(password_file, user.pw_uid, user.pw_gid)
        command = [
            str(self.bin_dir / "initdb"),
            f"--pgdata={self.data_dir}",
            "--username=postgres",
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
        try:
            result = subprocess.run(
                self._as_server_user(command), capture_output=True, text=True, check=False
            )
        finally:
            password_file.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr[-2000:]}")

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the server and wait until it accepts a password login, or raise with its log."""
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.base),
            "max_connections": "200",
            **self.settings,
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        command += [a for key, value in options.items() for a in ("-c", f"{key}={value}")]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._as_server_user(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: Ctrl-C reaches pytest only
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            if self.accepts_logins():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres was not ready within {timeout} s:\n{self.log_tail()}")

    def accepts_logins(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(driver="postgresql"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self, timeout: float = 15) -> None:
        """Fast shutdown (SIGINT: sessions are ended, no waiting for clients); then SIGKILL to
        the whole process group if it has not stopped in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def url(
        self, database: str = "postgres", *, driver: str = "postgresql", app: bool = False
    ) -> MaskedUrl:
        """A connection URL, as the superuser or as the app's role."""
        user, password = (
            (APP_ROLE, self.app_password) if app else ("postgres", self.superuser_password)
        )
        return MaskedUrl(f"{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}")

    def create_app_role(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(self.app_password)
                )
            )

    def create_database(self, prefix: str = "test") -> MaskedUrl:
        """A new, empty database owned by the app role; its URL as the app role."""
        import psycopg
        from psycopg import sql

        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(APP_ROLE)
                )
            )
        return self.url(name, app=True)


def start_server(settings: dict[str, str] | None = None) -> PostgresServer:
    """Init and start a throwaway cluster; the caller must stop() it and remove its base."""
    binaries = bin_dir()
    if binaries is None:
        raise RuntimeError(
            "PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)"
        )
    # Not under pytest's 0700 tmp dirs: the server's user must reach its directory.
    base = Path(tempfile.mkdtemp(prefix="flask-backend-pg-"))
    base.chmod(0o700)
    server = PostgresServer(binaries, base, settings=dict(settings or {}))
    try:
        server.init()
        server.start()
        server.create_app_role()
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole run (fsync off: the tests need no durability)."""
    try:
        server = start_server({"fsync": "off", "synchronous_commit": "off"})
    except (RuntimeError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests, but the server did not start: {error}")
        pytest.skip(f"no PostgreSQL server: {reason}")

    try:
        yield server
    finally:  # pytest runs this after failing tests and on Ctrl-C too
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def database_url(postgres: PostgresServer) -> MaskedUrl:
    """A fresh, empty database for one test, as the app role: postgresql://app:...@127.0.0.1."""
    if postgres.process is None:  # a test that stopped the server and failed before its restart
        postgres.start()
    return postgres.create_database()
