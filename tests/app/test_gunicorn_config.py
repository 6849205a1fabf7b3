"""The shipped gunicorn.conf.py: what it derives from the pod's environment, and that gunicorn
accepts it (`--check-config`)."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend_api.logs import JsonFormatter

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def settings() -> dict[str, Any]:
    """The module-level names of gunicorn.conf.py, read under the current environment."""
    return runpy.run_path(str(APP_DIR / "gunicorn.conf.py"))


def test_binds_all_interfaces_on_port_8000_by_default() -> None:
    assert settings()["bind"] == "0.0.0.0:8000"


def test_binds_the_port_the_pod_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert settings()["bind"] == "0.0.0.0:9123"


def test_graceful_timeout_defaults_to_25_seconds() -> None:
    assert settings()["graceful_timeout"] == 25


def test_graceful_timeout_follows_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRACEFUL_TIMEOUT", "7")
    assert settings()["graceful_timeout"] == 7


def test_event_loop_workers_follow_the_cpu_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 2.5-core limit from the Downward API
    monkeypatch.setenv("CPU_LIMIT_MILLICORES", "2500")
    # When the config is read, then it runs 3 of our gevent workers, each running 8 requests
    # at once and holding many more connections (slow and idle clients included)
    config = settings()
    assert (config["worker_class"], config["workers"], config["threads"]) == (
        "backend_api.worker.Worker",
        3,
        8,
    )
    assert config["worker_connections"] > 4 * config["threads"]


def test_writes_only_to_tmp_and_opens_no_control_socket() -> None:
    # The root filesystem is read-only; /tmp is the only writable path
    config = settings()
    assert config["worker_tmp_dir"] == "/tmp"
    assert config["control_socket_disable"] is True


def test_forwarded_allow_ips_is_left_to_gunicorn_when_unset() -> None:
    assert "forwarded_allow_ips" not in settings()


def test_forwarded_allow_ips_is_passed_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert settings()["forwarded_allow_ips"] == "10.0.0.0/8"


def test_workers_are_not_recycled_by_request_count_and_timeouts_are_set() -> None:
    # Recycling is by memory (backend_api/worker.py), so a busy pod never pauses for it
    config = settings()
    assert config["max_requests"] == 0
    assert (config["timeout"], config["keepalive"]) == (30, 75)


def test_every_log_is_json_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the ConfigMap's LOG_LEVEL
    monkeypatch.setenv("FLASK_LOG_LEVEL", "WARNING")
    # When the config is read
    config = settings()
    # Then gunicorn logs at that level, and every logger writes JSON to stdout
    assert (config["accesslog"], config["errorlog"], config["loglevel"]) == ("-", "-", "warning")
    logconfig = config["logconfig_dict"]
    assert logconfig["formatters"] == {"json": {"()": JsonFormatter}}
    assert logconfig["handlers"]["stdout"]["stream"] == "ext://sys.stdout"
    loggers = [logconfig["root"], *logconfig["loggers"].values()]
    assert all(logger["handlers"] == ["stdout"] for logger in loggers)
    assert set(logconfig["loggers"]) == {"gunicorn.error"}
    # The access log is written by our logger class, straight to stdout
    assert config["logger_class"] == "backend_api.logs.GunicornLogger"


def test_gunicorn_check_config_passes() -> None:
    # Given the image's working directory and a secret key, as in the pod
    env = {**os.environ, "FLASK_SECRET_KEY": "check-config-key"}
    # When gunicorn checks the shipped config and loads the app
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--check-config",
            "--config",
            "gunicorn.conf.py",
            "backend_api:create_app()",
        ],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # Then it succeeds without a word
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_master_imports_none_of_the_modules_the_workers_import_after_gevent_patches() -> None:
    # gevent patches the standard library in each worker, after the fork; a module that
    # gunicorn.conf.py (run in the master) imports keeps what it bound unpatched: psycopg
    # picks a blocking wait at import, and each query would stall the whole worker.
    code = (
        "import json, runpy, sys; runpy.run_path('gunicorn.conf.py');"
        "import backend_api.worker;"  # gunicorn loads the worker class in the master too
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('backend_api'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(APP_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = set(json.loads(done.stdout.splitlines()[-1]))
    server_side = {"config", "logs", "request_id", "serving", "worker"}
    assert imported == {"backend_api"} | {f"backend_api.{name}" for name in server_side}
