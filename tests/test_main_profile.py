"""main.py --profile dev|prod: a profile moves the defaults of settings, nothing else; a flag,
the environment and the env file still win over it (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

import main
from tests.support import FAKE_SECRETS, by_kind, container, load_dir, validate_strict
from tests.test_main_settings import refused


def synth(tmp_path: Path, *argv: str, **env: str) -> list[dict]:
    outdir = tmp_path / "dist"
    environ = {**FAKE_SECRETS, **env}
    main.synthesize(main.resolve(main.parse_args(list(argv)), environ), outdir)
    ((_, documents),) = load_dir(outdir)
    validate_strict(documents)
    return documents


def test_dev_runs_one_small_pod_of_a_local_image(tmp_path: Path) -> None:
    documents = synth(tmp_path, "--profile", "dev", "--image", "my-api:dev")

    deployment = by_kind(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert not [
        d for d in documents if d["kind"] in ("PodDisruptionBudget", "HorizontalPodAutoscaler")
    ]
    app = container(documents)
    assert app["imagePullPolicy"] == "IfNotPresent"
    assert app["resources"]["requests"]["cpu"] == "50m"
    assert app["resources"]["requests"]["memory"] == "128Mi"
    assert app["resources"]["limits"]["cpu"] == "1"  # the app runs as in prod: one worker
    assert by_kind(documents, "ConfigMap")["data"]["ENVIRONMENT"] == "development"


def test_prod_is_the_plain_defaults(tmp_path: Path) -> None:
    assert synth(tmp_path / "a", "--profile", "prod") == synth(tmp_path / "b")


def test_a_flag_or_the_environment_wins_over_the_profile(tmp_path: Path) -> None:
    documents = synth(tmp_path, "--replicas", "3", PROFILE="dev", ENVIRONMENT="staging")

    assert by_kind(documents, "Deployment")["spec"]["replicas"] == 3
    assert by_kind(documents, "ConfigMap")["data"]["ENVIRONMENT"] == "staging"
    assert container(documents)["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("profile", ["staging", "Dev", "production"])
def test_an_unknown_profile_is_refused(monkeypatch, capsys, tmp_path, profile: str) -> None:
    message = refused(monkeypatch, capsys, tmp_path, f"--profile={profile}")

    assert message == f"profile must be one of dev, prod, got {profile!r}"


# -- --ingress-host, --tls-secret ----------------------------------------------------------------


def test_ingress_host_adds_an_ingress_to_the_service(tmp_path: Path) -> None:
    documents = synth(tmp_path, "--ingress-host", "api.example.com", TLS_SECRET="api-tls")

    spec = by_kind(documents, "Ingress")["spec"]
    assert spec["rules"][0]["host"] == "api.example.com"
    assert spec["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]


def test_no_ingress_by_default(tmp_path: Path) -> None:
    assert not [d for d in synth(tmp_path) if d["kind"] == "Ingress"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--ingress-host", "10.0.0.1"],
            "ingress-host must be a DNS name like 'api.example.com' or '*.example.com' "
            "(lowercase letters, digits, '-' and '.', not an IP address), got '10.0.0.1'",
        ),
        (
            ["--ingress-host", "api.example.com", "--tls-secret", "Api_TLS"],
            "tls-secret must be a DNS subdomain of at most 253 characters (lowercase letters, "
            "digits, '-' and '.'), got 'Api_TLS'",
        ),
        (
            ["--tls-secret", "api-tls"],
            "tls-secret needs ingress-host: it is the certificate of that host",
        ),
    ],
)
def test_bad_ingress_settings_are_refused(monkeypatch, capsys, tmp_path, argv, message) -> None:
    assert refused(monkeypatch, capsys, tmp_path, *argv) == message
