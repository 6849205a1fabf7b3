"""`python -m backend_api.migrate` on a real PostgreSQL, run as the image runs it (a process in
app/, DATABASE_URL from the environment): idempotent upgrade, an advisory lock between concurrent
runs, a check that is 0 only at head, a bounded wait, failures that say why, JSON lines only."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg

from backend_api import migrate
from tests.support import ROOT


def run_migrate(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend_api.migrate", *args],
        cwd=ROOT / "app",
        env={"FLASK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_migrate(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend_api.migrate", *args],
        cwd=ROOT / "app",
        env={"FLASK_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def messages(output: str) -> list[str]:
    """Every line is a JSON object (json.loads fails the test otherwise); their messages."""
    return [json.loads(line)["message"] for line in output.splitlines() if line]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


def test_upgrade_creates_the_schema_and_a_second_run_changes_nothing(database_url: str):
    first = run_migrate(database_url, "upgrade")
    second = run_migrate(database_url, "upgrade")

    assert first.returncode == 0, first.stdout + first.stderr
    assert tables(database_url) == {"alembic_version", "items"}
    assert any("migrating from an empty database" in m for m in messages(first.stdout))
    assert second.returncode == 0
    assert any("nothing to do" in m for m in messages(second.stdout))
    assert first.stderr == second.stderr == ""


def test_check_is_0_only_at_head(database_url: str):
    before = run_migrate(database_url, "check")
    run_migrate(database_url, "upgrade")
    after = run_migrate(database_url, "check")

    assert before.returncode == 1
    assert after.returncode == 0
    assert json.loads(before.stdout.splitlines()[-1])["head"] == migrate.head()


def test_two_upgrades_at_once_migrate_once_and_both_exit_0(database_url: str):
    runs = [start_migrate(database_url, "upgrade") for _ in range(2)]
    outputs = [run.communicate(timeout=60)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    lines = [m for output in outputs for m in messages(output)]
    assert sum("migrating from" in m for m in lines) == 1
    assert sum("nothing to do" in m for m in lines) == 1


def test_an_upgrade_waits_for_the_lock_a_running_migration_holds(database_url: str):
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrate.LOCK_KEY,))
        waiting = start_migrate(database_url, "upgrade")
        assert waiting.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(waiting.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any("waiting for the migration lock" in line for line in lines):
            assert waiting.poll() is None, lines  # it must wait, not finish
            assert time.monotonic() < deadline, lines
            time.sleep(0.1)
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrate.LOCK_KEY,))
        waiting.wait(timeout=60)
        reader.join(timeout=10)
        waiting.stdout.close()

    assert waiting.returncode == 0, lines
    assert "migrating from an empty database to 0001" in messages("".join(lines))
    assert tables(database_url) == {"alembic_version", "items"}


def test_a_failing_migration_exits_1_with_its_error_and_changes_nothing(database_url: str):
    # Given a table the first migration would create, made by hand
    with psycopg.connect(database_url) as connection:
        connection.execute("CREATE TABLE items (id int)")

    failed = run_migrate(database_url, "upgrade")

    assert failed.returncode == 1
    last = json.loads(failed.stdout.splitlines()[-1])
    assert last["level"] == "critical"
    assert 'relation "items" already exists' in last["message"]
    assert "Traceback" in last["exception"]
    assert tables(database_url) == {"items"}  # the transaction rolled back: no alembic_version
    assert run_migrate(database_url, "check").returncode == 1


def test_wait_gives_up_after_its_timeout_logging_while_it_waits(database_url: str):
    started = time.monotonic()
    result = run_migrate(database_url, "wait", "--timeout", "2", "--interval", "0.5")

    assert result.returncode == 1
    assert time.monotonic() - started < 15
    lines = messages(result.stdout)
    assert sum(m.startswith("waiting for the schema") for m in lines) >= 2
    assert lines[-1].startswith("gave up after 2 s")


def test_wait_returns_once_the_database_reaches_head(database_url: str):
    waiting = start_migrate(database_url, "wait", "--timeout", "60", "--interval", "0.2")
    time.sleep(1)
    assert run_migrate(database_url, "upgrade").returncode == 0

    output = waiting.communicate(timeout=30)[0]

    assert waiting.returncode == 0, output
    assert messages(output)[-1] == f"the database is at head {migrate.head()}"


def test_a_database_a_newer_release_migrated_is_left_alone(database_url: str):
    # Given a database at a revision this code does not know (a newer release's)
    assert run_migrate(database_url, "upgrade").returncode == 0
    with psycopg.connect(database_url) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    upgrade = run_migrate(database_url, "upgrade")
    wait = run_migrate(database_url, "wait", "--timeout", "5")
    check = run_migrate(database_url, "check")

    assert (upgrade.returncode, wait.returncode, check.returncode) == (0, 0, 1)
    assert "a newer release migrated it" in messages(upgrade.stdout)[-1]


def test_without_a_database_url_there_is_nothing_to_migrate_or_wait_for():
    # The app runs without a database too: the Job and the init container must not block it
    results = {command: run_migrate("", command) for command in ("upgrade", "wait", "check")}

    assert {c: r.returncode for c, r in results.items()} == {"upgrade": 0, "wait": 0, "check": 1}
    for result in results.values():
        (line,) = messages(result.stdout)
        assert line.startswith("DATABASE_URL is not set")


def test_a_database_url_of_another_kind_exits_2_naming_the_scheme():
    result = run_migrate("mysql://app:pw@db:3306/app", "upgrade")

    assert result.returncode == 2
    (line,) = messages(result.stdout)
    assert "got 'mysql'://" in line
    assert "pw@" not in line


def test_the_password_never_reaches_the_output(database_url: str):
    password = database_url.split(":")[2].split("@")[0]
    wrong = database_url.replace(password, "not-the-password")

    outputs = [run_migrate(database_url, "upgrade"), run_migrate(wrong, "check")]

    assert outputs[1].returncode == 1
    for output in outputs:
        assert password not in output.stdout + output.stderr
        assert "not-the-password" not in output.stdout + output.stderr


def test_the_image_carries_the_migrations_the_command_reads():
    from tests.pod import Image, dockerfile_instructions

    copies = [rest for instruction, rest in dockerfile_instructions() if instruction == "COPY"]

    assert "migrations/ migrations/" in copies
    assert migrate.MIGRATIONS_DIR == ROOT / "app" / "migrations"
    assert Image.from_dockerfile().workdir == "/app"  # backend_api/ and migrations/ side by side
