"""Migrations, for real: the synthesized Job, init container and app container run in the pod
sandbox (tests/pod.py: bubblewrap, read-only root, the pod's UID, env and secret files from the
manifests) against a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

import main
from flask_backend.migrations import MIGRATIONS_WAIT_CONTAINER
from tests.pod import ON_THE_MANIFEST_PORTS, PodProcess, require_sandbox, start_pod
from tests.postgres import PostgresServer, free_port
from tests.support import FAKE_SECRETS, by_kind, load_dir

pytestmark = ON_THE_MANIFEST_PORTS


@pytest.fixture(scope="module")
def sandbox() -> None:
    require_sandbox()


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    return postgres.create_database("pods")


@pytest.fixture
def manifests(tmp_path: Path, database: str) -> list[dict[str, Any]]:
    """The default chart, as `make synth` writes it, pointed at this test's database."""
    outdir = tmp_path / "dist"
    main.synthesize(
        main.resolve(main.parse_args([]), FAKE_SECRETS | {"DATABASE_URL": database}), outdir
    )
    ((_, documents),) = load_dir(outdir)
    return documents


@pytest.fixture
def processes() -> Iterator[list[PodProcess]]:
    """Every container a test starts, killed at the end whatever happened."""
    started: list[PodProcess] = []
    yield started
    for process in started:
        process.kill()


def run(processes: list[PodProcess], documents: list[dict[str, Any]], workdir: Path, **kw: Any):  # type: ignore[no-untyped-def]
    process = start_pod(documents, workdir, **kw)
    processes.append(process)
    return process


def messages(container: PodProcess) -> list[str]:
    return [line["message"] for line in container.log_lines()]


def wait_for_message(container: PodProcess, prefix: str, timeout: float = 30) -> None:
    """Until the container has logged a line starting with prefix (a slow machine imports
    slowly), failing early if it exits."""
    deadline = time.monotonic() + timeout
    while not any(m.startswith(prefix) for m in messages(container)):
        assert container.process.poll() is None, container.logs()
        assert time.monotonic() < deadline, f"no {prefix!r} in {timeout} s:\n{container.logs()}"
        time.sleep(0.2)


def readiness_period(documents: list[dict[str, Any]]) -> int:
    (app,) = by_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    return int(app["readinessProbe"]["periodSeconds"])


def test_pods_wait_for_the_job_then_serve_items(
    sandbox: None,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
    processes: list[PodProcess],
    database: str,
):
    # Given two pods started before the migration: their init containers wait, nothing serves
    waits = [
        run(processes, manifests, tmp_path, container_name=MIGRATIONS_WAIT_CONTAINER)
        for _ in range(2)
    ]
    for wait in waits:
        wait_for_message(wait, "waiting for the schema")
    assert [w.process.poll() for w in waits] == [None, None], [w.logs() for w in waits]

    # When the Job's container runs
    job = run(processes, manifests, tmp_path, kind="Job")
    assert job.wait(timeout=60) == 0, job.logs()

    # Then both init containers finish, both app containers become ready and serve the API
    assert [w.wait(timeout=30) for w in waits] == [0, 0]
    pods = [run(processes, manifests, tmp_path, port=free_port()) for _ in range(2)]
    for pod in pods:
        pod.wait_until_started("/readyz")
    status, created = pods[0].request("/api/v1/items", {"name": "from pod 0"})
    assert status == 201, created
    status, listed = pods[1].get("/api/v1/items")
    assert status == 200
    assert [item["name"] for item in listed["items"]] == ["from pod 0"]
    assert any("migrating from an empty database" in m for m in messages(job))
    password = database.split(":")[2].split("@")[0]
    for container in [*waits, job, *pods]:
        assert password not in container.logs()


def test_two_jobs_at_once_migrate_once_and_both_succeed(
    sandbox: None, manifests: list[dict[str, Any]], tmp_path: Path, processes: list[PodProcess]
):
    jobs = [run(processes, manifests, tmp_path, kind="Job") for _ in range(2)]

    assert [job.wait(timeout=60) for job in jobs] == [0, 0], [job.logs() for job in jobs]
    lines = [m for job in jobs for m in messages(job)]
    assert sum("migrating from" in m for m in lines) == 1
    assert sum("nothing to do" in m for m in lines) == 1


def test_a_failing_migration_fails_the_job_with_its_error_and_pods_keep_waiting(
    sandbox: None,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
    processes: list[PodProcess],
    database: str,
):
    # Given a database the first migration cannot apply (its table exists, made by hand)
    with psycopg.connect(database) as connection:
        connection.execute("CREATE TABLE items (id int)")
    wait = run(processes, manifests, tmp_path, container_name=MIGRATIONS_WAIT_CONTAINER)
    wait_for_message(wait, "waiting for the schema")

    job = run(processes, manifests, tmp_path, kind="Job")

    assert job.wait(timeout=60) == 1
    last = job.log_lines()[-1]
    assert last["level"] == "critical"
    assert 'relation "items" already exists' in last["message"]
    time.sleep(3)
    assert wait.process.poll() is None  # still waiting: no pod serves on this schema
    # (Its last line may be Alembic's own note from a poll, so look at all of them.)
    assert not [m for m in messages(wait) if m.startswith("the database is at head")]


def test_a_database_outage_fails_readiness_not_liveness_and_recovers(
    sandbox: None,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
    processes: list[PodProcess],
    postgres: PostgresServer,
):
    job = run(processes, manifests, tmp_path, kind="Job")
    assert job.wait(timeout=60) == 0, job.logs()
    pod = run(processes, manifests, tmp_path, port=free_port())
    pod.wait_until_started("/readyz")
    period = readiness_period(manifests)

    postgres.stop()
    try:
        stopped = time.monotonic()
        while pod.get("/readyz")[0] != 503:
            assert time.monotonic() - stopped < period, "readiness still ok one period later"
            time.sleep(0.2)
        assert pod.get("/livez")[0] == 200
        assert pod.get("/api/v1/items")[0] == 503
    finally:
        postgres.start()
    restarted = time.monotonic()
    while pod.get("/readyz")[0] != 200:
        assert time.monotonic() - restarted < period, "readiness did not recover in one period"
        time.sleep(0.2)

    assert pod.process.poll() is None  # never restarted
    assert pod.get("/api/v1/items")[0] == 200


def test_requests_waiting_on_the_database_block_neither_the_probes_nor_each_other(
    sandbox: None,
    manifests: list[dict[str, Any]],
    tmp_path: Path,
    processes: list[PodProcess],
    database: str,
):
    # Given a migrated database and a serving pod (one gevent worker: a query that blocked
    # the worker instead of its greenlet would stall everything below)
    job = run(processes, manifests, tmp_path, kind="Job")
    assert job.wait(timeout=60) == 0, job.logs()
    pod = run(processes, manifests, tmp_path)
    pod.wait_until_started("/readyz")

    # When another session holds the items table, so that API reads wait in PostgreSQL
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=4) as pool:
            waiting = [pool.submit(pod.get, "/api/v1/items") for _ in range(4)]
            time.sleep(1)
            assert not any(future.done() for future in waiting)

            # Then the worker still answers the probes and other routes at once
            start = time.monotonic()
            assert pod.get("/livez")[0] == 200
            assert pod.get("/api/v1/info")[0] == 200
            assert time.monotonic() - start < 1

            holder.rollback()  # the lock goes; every waiting read completes
            assert [future.result(timeout=10)[0] for future in waiting] == [200] * 4
