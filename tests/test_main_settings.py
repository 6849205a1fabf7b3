"""main.py refuses, at synth time, what the app or the cluster would refuse later (issue 10).

A setting the app cannot boot with, or a namespace Kubernetes runs its own pods in, stops the
synth with one line and exit code 2: never pods in CrashLoopBackOff, never a clobbered system
namespace. No secret value appears in any message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import main
from backend_api import config as app_config
from tests.support import FAKE_SECRETS


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    *argv: str,
    **env: str,
) -> tuple[int, str]:
    """main.main() in tmp_path with a clean environment; returns (exit code, stderr)."""
    monkeypatch.chdir(tmp_path)
    for name in {s.env for s in main.SETTINGS} | set(main.SECRET_KEYS) | {"CDK8S_OUTDIR"}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main.main(list(argv))
    return code, capsys.readouterr().err


def refused(monkeypatch, capsys, tmp_path, *argv: str, **env: str) -> str:
    code, err = run(monkeypatch, capsys, tmp_path, *argv, **{**FAKE_SECRETS, **env})
    assert code == 2
    assert err.count("\n") == 1, err
    assert not (tmp_path / "dist").exists()
    for value in (*FAKE_SECRETS.values(), *env.values()):
        if "://" in value or "SECRET" in value:
            assert value not in err
    return err.removeprefix("main.py: error: ").rstrip("\n")


# -- LOG_LEVEL ----------------------------------------------------------------------------------


def test_main_knows_the_log_levels_the_app_accepts():
    assert main.LOG_LEVELS == app_config.LOG_LEVELS


@pytest.mark.parametrize("level", ["verbose", "warn", "trace", "", "info "])
def test_a_log_level_the_app_would_refuse_is_refused_at_synth_time(
    monkeypatch, capsys, tmp_path, level
):
    message = refused(monkeypatch, capsys, tmp_path, "--log-level", level)

    assert message == (
        f"log-level must be one of debug, info, warning, error, critical (any case), got {level!r}"
    )
    with pytest.raises(app_config.ConfigError):
        app_config.log_level(level)


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning"])
def test_log_levels_the_app_accepts_pass(monkeypatch, capsys, tmp_path, level):
    code, err = run(monkeypatch, capsys, tmp_path, "--log-level", level, **FAKE_SECRETS)

    assert code == 0, err
    assert app_config.log_level(level) == level.upper()


# -- DATABASE_URL -------------------------------------------------------------------------------

SCHEME_RULE = (
    "DATABASE_URL must start with postgresql://, postgres://, postgresql+psycopg:// "
    "(its value is not shown)"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://api:zq-db-pw@db:3306/api", SCHEME_RULE),
        ("sqlite:///var/zq-db-pw.db", SCHEME_RULE),
        ("postgresql+asyncpg://api:zq-db-pw@db/api", SCHEME_RULE),
        ("zq-db-pw", SCHEME_RULE),
        (
            "postgresql:///api?password=zq-db-pw",
            "DATABASE_URL must name a host, like postgresql://user:password@db:5432/app "
            "(its value is not shown)",
        ),
        (
            "postgresql://api:zq-db-pw@db:99999/api",
            "DATABASE_URL must have a port from 1 to 65535, or none (its value is not shown)",
        ),
        (
            "postgresql://api:zq-db-pw@db:port/api",
            "DATABASE_URL must have a port from 1 to 65535, or none (its value is not shown)",
        ),
    ],
)
def test_a_database_url_the_app_cannot_use_is_refused_without_showing_it(
    monkeypatch, capsys, tmp_path, url, expected
):
    message = refused(monkeypatch, capsys, tmp_path, DATABASE_URL=url)

    assert message == expected
    assert "zq-db-pw" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://api:zq-db-pw@db.database.svc.cluster.local:5432/api",
        "postgres://api:zq-db-pw@db/api",
        "postgresql+psycopg://api:zq-db-pw@db:5433/api",
        "POSTGRESQL://api:zq-db-pw@db/api",
    ],
)
def test_database_urls_main_accepts_the_app_accepts_too(monkeypatch, capsys, tmp_path, url):
    code, err = run(monkeypatch, capsys, tmp_path, **{**FAKE_SECRETS, "DATABASE_URL": url})

    assert code == 0, err
    host, port = app_config.database_address(url)
    assert host.startswith("db")
    assert 1 <= port <= 65535


# -- namespaces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace", ["kube-system", "default", "kube-public", "kube-node-lease", "kube-extra"]
)
def test_system_namespaces_are_refused(monkeypatch, capsys, tmp_path, namespace):
    # Its Namespace object would label kube-system "enforce: restricted": system pods (which
    # need privileges) could then no longer be recreated.
    message = refused(monkeypatch, capsys, tmp_path, "--namespace", namespace)

    assert message == (
        "namespace must not be one Kubernetes runs its own pods in (default, kube-system, "
        "kube-public, kube-node-lease or any kube-*): its Namespace would enforce Pod Security "
        f"on them, got {namespace!r}"
    )


# -- integers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--replicas", str(2**64)],
            f"replicas must be <= 2147483647 (an int32 in the Kubernetes API), got {2**64}",
        ),
        (
            ["--max-replicas", str(2**31)],
            f"autoscaling.max_replicas must be <= 2147483647 (an int32 in the Kubernetes API), "
            f"got {2**31}",
        ),
    ],
)
def test_integers_beyond_int32_are_refused(monkeypatch, capsys, tmp_path, argv, expected):
    assert refused(monkeypatch, capsys, tmp_path, *argv) == expected


# -- SECRET_KEY ---------------------------------------------------------------------------------


def test_a_short_secret_key_is_refused_without_showing_it(monkeypatch, capsys, tmp_path):
    # It keys the rollout checksum: a guessable one would make every secret value guessable.
    message = refused(monkeypatch, capsys, tmp_path, SECRET_KEY="zq-SECRET-short")

    assert message == (
        "secrets['SECRET_KEY'] must be at least 32 random characters (it signs sessions and keys "
        "the checksum/config annotation, which Deployment readers see), got 15 characters"
    )
