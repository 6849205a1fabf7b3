"""Migrations(): a Job named after what it runs, with the app's hardening, and an init container
that holds the app pods until the schema is at their head."""

from __future__ import annotations

from typing import Any

import pytest

from flask_backend import FlaskBackend, Metrics, Migrations
from tests.support import (
    FAKE_SECRETS,
    IMAGE,
    by_kind,
    container,
    pod_spec,
    synth,
    validate_strict,
)

METRICS_ENV = {"METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR"}
SYNC_WAVE = "argocd.argoproj.io/sync-wave"  # Argo CD applies lower waves first


def backend_documents(**props: Any) -> list[dict[str, Any]]:
    props = {"image": IMAGE, "secrets": FAKE_SECRETS, "migrations": Migrations(), **props}
    return synth(lambda chart: FlaskBackend(chart, "api", **props))


def job_of(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(documents, "Job")


def job_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = job_of(documents)["spec"]["template"]["spec"]["containers"]
    return only


def test_the_job_and_the_deployment_are_valid_kubernetes_1_27():
    validate_strict(backend_documents())


def test_the_job_runs_the_migration_command_in_the_app_image():
    documents = backend_documents()

    migrate = job_container(documents)

    assert migrate["image"] == IMAGE
    assert migrate["command"] == ["python", "-m", "backend_api.migrate", "upgrade"]
    assert job_of(documents)["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def without_metrics(container_or_pod: dict) -> dict:
    """What a one-off command shares with the app: all but the metrics the server serves."""
    trimmed = dict(container_or_pod)
    if "env" in trimmed:
        trimmed["env"] = [e for e in trimmed["env"] if e["name"] not in METRICS_ENV]
    for field in ("volumeMounts", "volumes"):
        if field in trimmed:
            trimmed[field] = [v for v in trimmed[field] if v["name"] != "metrics"]
    return trimmed


def test_the_job_has_the_app_containers_config_secrets_hardening_and_resources():
    documents = backend_documents()
    app, migrate = without_metrics(container(documents)), job_container(documents)

    for field in ("env", "envFrom", "volumeMounts", "securityContext", "resources"):
        assert migrate[field] == app[field], field
    job_pod, app_pod = job_of(documents)["spec"]["template"]["spec"], pod_spec(documents)
    for field in ("securityContext", "serviceAccountName", "automountServiceAccountToken"):
        assert job_pod[field] == app_pod[field], field
    assert job_pod["volumes"] == without_metrics(app_pod)["volumes"]


def test_migrations_get_no_metrics_env_or_volume():
    documents = backend_documents(metrics=Metrics())
    migrate = job_container(documents)
    job_pod = job_of(documents)["spec"]["template"]["spec"]

    assert not {e["name"] for e in migrate["env"]} & METRICS_ENV
    assert "metrics" not in {v["name"] for v in job_pod["volumes"]}
    assert "metrics" in {v["name"] for v in pod_spec(documents)["volumes"]}
    assert migrate["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert job_pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_job_serves_nothing_and_needs_no_probes():
    migrate = job_container(backend_documents())

    assert not {"ports", "readinessProbe", "livenessProbe", "startupProbe", "lifecycle"} & set(
        migrate
    )


def test_the_job_name_is_stable_for_the_same_input():
    assert (
        job_of(backend_documents())["metadata"]["name"]
        == (job_of(backend_documents())["metadata"]["name"])
    )


def test_a_new_image_command_or_configuration_gets_a_new_job():
    names = {
        job_of(documents)["metadata"]["name"]
        for documents in (
            backend_documents(),
            backend_documents(image="registry.example.com/team/api:1.4.3"),
            backend_documents(migrations=Migrations(command=("flask", "db", "upgrade"))),
            backend_documents(config={"LOG_LEVEL": "debug"}),
        )
    }

    assert len(names) == 4
    assert all(name.startswith("api-migrate-") for name in names)


def test_the_job_name_fits_a_label_value_for_the_longest_backend_name():
    long_name = "a" * 43 + "-" + "b" * 19  # 63 characters; the cut falls after the "-"

    documents = backend_documents(name=long_name)

    name = job_of(documents)["metadata"]["name"]
    assert len(name) <= 63
    assert name.startswith("a" * 43 + "-migrate-")  # no "--": still a valid DNS label


def test_no_service_budget_or_policy_selects_the_migration_pods():
    documents = backend_documents()
    labels = job_of(documents)["spec"]["template"]["metadata"]["labels"]
    selectors = [
        by_kind(documents, "Service")["spec"]["selector"],
        by_kind(documents, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        next(
            d["spec"]["podSelector"]["matchLabels"]
            for d in documents
            if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "api"
        ),
    ]

    for selector in selectors:
        assert not selector.items() <= labels.items()


def test_app_pods_wait_for_the_schema_in_an_init_container():
    documents = backend_documents()
    app = container(documents)

    (wait,) = pod_spec(documents)["initContainers"]

    assert wait["command"] == [
        "python",
        "-m",
        "backend_api.migrate",
        "wait",
        "--timeout",
        "300",
    ]
    for field in ("image", "env", "envFrom", "volumeMounts", "securityContext", "resources"):
        assert wait[field] == without_metrics(app)[field], field


def test_argo_cd_updates_the_deployment_after_the_job():
    documents = backend_documents()

    deployment = by_kind(documents, "Deployment")

    # (Their other annotations are the checkers' exemptions: flask_backend.exemptions.)
    assert deployment["metadata"]["annotations"][SYNC_WAVE] == "1"
    assert SYNC_WAVE not in job_of(documents)["metadata"]["annotations"]  # wave 0, as the ConfigMap


def test_retries_deadline_and_ttl_come_from_the_props():
    documents = backend_documents(
        migrations=Migrations(
            backoff_limit=0, active_deadline_seconds=60, ttl_seconds_after_finished=None
        )
    )

    spec = job_of(documents)["spec"]

    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 60)
    assert "ttlSecondsAfterFinished" not in spec


def test_the_defaults_keep_a_finished_job_for_a_week():
    spec = job_of(backend_documents())["spec"]

    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (2, 900)
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600


def test_without_migrations_there_is_no_job_and_no_init_container():
    documents = backend_documents(migrations=None)

    assert "Job" not in {d["kind"] for d in documents}
    assert "initContainers" not in pod_spec(documents)
    assert SYNC_WAVE not in by_kind(documents, "Deployment")["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("migrations", "message"),
    [
        (
            Migrations(command=()),
            r"^migrations.command must be a non-empty sequence of strings with a program first, "
            r"got \(\)$",
        ),
        (Migrations(command=("", "x")), r"^migrations.command must be a non-empty sequence"),
        (Migrations(wait_command=("wait", 5)), r"^migrations.wait_command must be a non-empty"),
        (
            Migrations(backoff_limit=-1),
            r"^migrations.backoff_limit must be between 0 and 100, got -1$",
        ),
        (
            Migrations(active_deadline_seconds=0),
            r"^migrations.active_deadline_seconds must be >= 1, got 0$",
        ),
        (
            Migrations(ttl_seconds_after_finished=-5),
            r"^migrations.ttl_seconds_after_finished must be >= 0, got -5$",
        ),
    ],
)
def test_bad_migrations_are_refused_naming_the_field(migrations: Migrations, message: str):
    with pytest.raises(ValueError, match=message):
        backend_documents(migrations=migrations)


def test_migrations_of_the_wrong_type_are_refused():
    with pytest.raises(TypeError, match=r"^migrations must be Migrations, got str 'on'$"):
        backend_documents(migrations="on")


def test_a_command_given_as_a_string_is_refused():
    with pytest.raises(TypeError, match=r"^migrations.command must be tuple or list, got str"):
        backend_documents(migrations=Migrations(command="alembic upgrade head"))  # type: ignore[arg-type]


def test_migration_pods_accept_no_traffic_and_may_reach_what_the_app_may():
    from flask_backend import EgressRule, NetworkPolicyOptions

    documents = backend_documents(
        network_policy=NetworkPolicyOptions(
            egress=(EgressRule(namespace="database", ports=(5432,)),)
        )
    )
    policies = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "NetworkPolicy"}
    labels = job_of(documents)["spec"]["template"]["metadata"]["labels"]

    migrations = policies["api-migrations"]
    assert migrations["podSelector"]["matchLabels"].items() <= labels.items()
    assert "ingress" not in migrations  # Ingress with no rules: nothing may connect
    assert migrations["egress"] == policies["api"]["egress"]
    assert migrations["policyTypes"] == ["Ingress", "Egress"]


def test_without_a_network_policy_the_migration_pods_get_none_either():
    documents = backend_documents(network_policy=None)

    assert "NetworkPolicy" not in {d["kind"] for d in documents}


def test_main_turns_migrations_on_by_default_and_off_on_request():
    import main

    assert main.resolve(main.parse_args([]), FAKE_SECRETS).migrations is True
    assert main.resolve(main.parse_args(["--migrations", "off"]), FAKE_SECRETS).migrations is False
    with pytest.raises(ValueError, match=r"^migrations must be one of 'on', 'off', got 'yes'$"):
        main.resolve(main.parse_args([]), {**FAKE_SECRETS, "MIGRATIONS": "yes"})
