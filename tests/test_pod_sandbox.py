"""The synthesized pod, run for real: read-only root, the pod's user, its env, files and ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import main
from tests.pod import (
    ON_THE_MANIFEST_PORTS,
    PodProcess,
    descendants,
    is_gunicorn,
    require_sandbox,
    start_pod,
)
from tests.postgres import PostgresServer
from tests.support import FAKE_SECRETS, by_kind, load_dir, secret_values

pytestmark = ON_THE_MANIFEST_PORTS


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> str:
    """A database of the real PostgreSQL server (tests/postgres.py): readiness runs SELECT 1."""
    return postgres.create_database("sandbox")


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, database: str) -> list[dict[str, Any]]:
    """The default chart, as `make synth` writes it (with fake secrets)."""
    outdir = tmp_path_factory.mktemp("synth") / "dist"
    environ = FAKE_SECRETS | {"DATABASE_URL": database}
    main.synthesize(main.resolve(main.parse_args([]), environ), outdir)
    ((_, documents),) = load_dir(outdir)
    return documents


@pytest.fixture(scope="module")
def sandbox() -> None:
    require_sandbox()


@pytest.fixture
def pod(sandbox: None, manifests: list[dict[str, Any]], tmp_path: Path):  # type: ignore[no-untyped-def]
    process = start_pod(manifests, tmp_path)
    yield process
    process.kill()


def container_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = by_kind(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def ids_of(pid: int) -> tuple[int, int]:
    """Real (uid, gid) of a host process."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["Uid"].split()[0]), int(status["Gid"].split()[0])


def test_probes_named_in_the_manifest_answer_200_on_its_port(pod: PodProcess, manifests):
    container = container_of(manifests)

    pod.wait_until_started(container["startupProbe"]["httpGet"]["path"])

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == pod.port
        status, body = pod.get(get["path"])
        assert status == 200, (probe, body, pod.logs())


def test_the_service_target_port_reaches_the_api(pod: PodProcess, manifests):
    container = container_of(manifests)
    service = by_kind(manifests, "Service")
    (service_port,) = (p for p in service["spec"]["ports"] if p["name"] == "http")
    (target,) = (p for p in container["ports"] if p["name"] == service_port["targetPort"])
    pod.wait_until_started(container["startupProbe"]["httpGet"]["path"])

    status, body = pod.get("/api/v1/info", port=target["containerPort"])

    assert status == 200
    assert body["environment"] == by_kind(manifests, "ConfigMap")["data"]["ENVIRONMENT"]
    assert FAKE_SECRETS["SECRET_KEY"] not in str(body)


def test_gunicorn_runs_as_the_pod_user_and_writes_nothing_but_tmp(pod: PodProcess, manifests):
    container = container_of(manifests)
    pod.wait_until_started(container["startupProbe"]["httpGet"]["path"])
    context = container["securityContext"]

    if os.geteuid() == 0:  # outside a user namespace the ids are real, not just mapped
        gunicorns = [pid for pid in descendants(pod.process.pid) if is_gunicorn(pid)]
        assert len(gunicorns) >= 2  # master and at least one worker
        expected = (context["runAsUser"], context["runAsGroup"])
        assert {ids_of(pid) for pid in gunicorns} == {expected}
    assert "Read-only file system" not in pod.logs()
    assert "Permission denied" not in pod.logs()


def test_sigterm_exits_0_within_the_declared_grace_period(pod: PodProcess, manifests):
    container = container_of(manifests)
    pod.wait_until_started(container["startupProbe"]["httpGet"]["path"])
    grace = by_kind(manifests, "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]

    assert pod.stop(timeout=grace) == 0, pod.logs()


def test_secret_values_never_reach_the_logs(pod: PodProcess, manifests, database: str):
    container = container_of(manifests)
    pod.wait_until_started(container["startupProbe"]["httpGet"]["path"])
    pod.get("/api/v1/info")
    pod.stop(timeout=30)

    secret = secret_values(by_kind(manifests, "Secret"))
    for value in [*secret.values(), database.split(":")[2].split("@")[0]]:
        assert value not in pod.logs()
