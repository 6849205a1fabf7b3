"""The manifests and the app agree: one number or name, defined on each side, held equal here."""

from __future__ import annotations

import inspect
import re
import runpy
import tomllib
from pathlib import Path
from typing import Any

import pytest

import flask_backend
from backend_api import config as app_config
from backend_api import create_app
from flask_backend import FlaskBackend, Metrics, Probes, Shutdown
from tests.pod import Image
from tests.support import FAKE_SECRETS, ROOT, container, pod_spec, synth


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return synth(
        lambda chart: FlaskBackend(
            chart, "api", image="repo/api:1.0", secrets=FAKE_SECRETS, metrics=Metrics()
        )
    )


def env_of(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(documents)["env"]}


def gunicorn_settings(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))


def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {
        re.sub(r"[-_.]+", "-", name.lower()): version  # PEP 503: zope.event is zope-event
        for name, _, version in (line.partition("==") for line in lines if line)
    }


def test_image_user_is_the_pod_user():
    assert (
        Image.from_dockerfile().user == f"{flask_backend.RUN_AS_USER}:{flask_backend.RUN_AS_GROUP}"
    )


def test_image_exposes_the_ports_the_construct_declares(documents):
    ports = [port["containerPort"] for port in container(documents)["ports"]]

    assert (
        Image.from_dockerfile().exposed
        == ports
        == [flask_backend.DEFAULT_PORT, flask_backend.DEFAULT_METRICS_PORT]
    )


def test_metrics_port_dir_and_path_are_the_ones_the_app_serves(documents, tmp_path):
    from backend_api import metrics as app_metrics

    env = env_of(documents)
    ports = {port["name"]: port["containerPort"] for port in container(documents)["ports"]}
    mounts = {m["name"]: m["mountPath"] for m in container(documents)["volumeMounts"]}

    assert env[app_metrics.PORT_ENV] == str(ports["metrics"])
    assert env[app_metrics.DIR_ENV] == mounts["metrics"] == flask_backend.METRICS_DIR
    assert app_metrics.PATH == flask_backend.METRICS_PATH
    # The directory the pod mounts is emptied and served from by the app's own startup.
    server = app_metrics.start_master(
        {app_metrics.PORT_ENV: "0", app_metrics.DIR_ENV: str(tmp_path)}
    )
    try:
        status = _get(server.server_port, app_metrics.PATH)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200


def _get(port: int, path: str) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_gunicorn_binds_the_port_and_graceful_timeout_the_manifest_passes(documents, monkeypatch):
    env = env_of(documents)

    settings = gunicorn_settings(
        {"PORT": env["PORT"], "GRACEFUL_TIMEOUT": env["GRACEFUL_TIMEOUT"]}, monkeypatch
    )

    assert settings["bind"] == f"0.0.0.0:{container(documents)['ports'][0]['containerPort']}"
    assert settings["graceful_timeout"] == Shutdown().graceful_timeout_seconds
    assert pod_spec(documents)["terminationGracePeriodSeconds"] > settings["graceful_timeout"]


def test_gunicorn_defaults_equal_the_construct_defaults(monkeypatch):
    for name in ("PORT", "GRACEFUL_TIMEOUT", "CPU_LIMIT_MILLICORES"):
        monkeypatch.delenv(name, raising=False)

    settings = gunicorn_settings({}, monkeypatch)

    assert settings["bind"] == f"0.0.0.0:{flask_backend.DEFAULT_PORT}"
    assert settings["graceful_timeout"] == Shutdown().graceful_timeout_seconds


def test_gunicorn_heartbeat_lives_in_the_writable_emptydir(documents, monkeypatch):
    mounts = {m["mountPath"] for m in container(documents)["volumeMounts"]}

    assert gunicorn_settings({}, monkeypatch)["worker_tmp_dir"] == flask_backend.TMP_DIR
    assert flask_backend.TMP_DIR in mounts


def test_secrets_are_mounted_where_the_app_reads_them(documents):
    mounts = {m["name"]: m["mountPath"] for m in container(documents)["volumeMounts"]}

    # No variable tells the app where (scanners flag any variable named like a secret): it
    # reads the folder the pod mounts, as Docker and Compose mount secrets.
    assert "SECRETS_DIR" not in env_of(documents)
    assert str(app_config.DEFAULT_SECRETS_DIR) == mounts["secrets"] == flask_backend.SECRETS_DIR


def test_every_env_var_the_construct_sets_is_read_by_the_app(documents):
    app_source = "\n".join(p.read_text() for p in (ROOT / "app").rglob("*.py"))

    for name in env_of(documents):
        assert re.search(rf"[\"']{name}[\"']", app_source), f"the app never reads {name}"


def test_config_map_keys_arrive_under_the_prefix_the_app_reads(documents):
    default_prefix = inspect.signature(FlaskBackend.__init__).parameters["env_prefix"].default
    (env_from,) = (e for e in container(documents)["envFrom"] if "configMapRef" in e)

    assert env_from["prefix"] == default_prefix == f"{app_config.ENV_PREFIX}_"


def test_probe_paths_are_routes_of_the_app(documents):
    app = create_app({"TESTING": True, "SECRET_KEY": "test"})
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    probes = Probes()

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container(documents)[probe]["httpGet"]["path"] in routes
    assert {probes.startup_path, probes.readiness_path, probes.liveness_path} <= routes


def test_image_installs_the_projects_pinned_versions_of_the_app_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    app_extra = {
        re.split(r"[<>=!~ ]", r)[0].lower() for r in project["optional-dependencies"]["app"]
    }
    image_pins, lock = (
        pins(ROOT / "app" / "requirements.txt"),
        pins(ROOT / "requirements" / "lock.txt"),
    )

    assert app_extra <= set(image_pins)
    assert {name: lock.get(name) for name in image_pins} == image_pins


def test_image_python_is_the_projects_python_line():
    (base,) = (rest for instruction, rest in _from_lines())
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]

    assert re.match(r"python:3\.11\.\d+-slim", base)
    assert requires == ">=3.11"


def _from_lines() -> list[tuple[str, str]]:
    lines = (ROOT / "app" / "Dockerfile").read_text().splitlines()
    return [("FROM", line.split()[1]) for line in lines if line.startswith("FROM ")]
