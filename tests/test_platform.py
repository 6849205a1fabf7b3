"""Platform fit (issue 13): no CPU limit, envFrom, init containers, sidecars, priority
class, a ServiceAccount managed elsewhere. One behaviour per test; bad input gets one line naming
the field (checked by tests.test_construct_errors.rejected: nothing half-built, no secret shown).
"""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest

from flask_backend import (
    EnvFrom,
    ExtraContainer,
    FlaskBackend,
    Migrations,
    Resources,
)
from tests.support import (
    IMAGE,
    by_kind,
    container,
    pod_spec,
    synth,
    validate_strict,
)
from tests.test_construct_errors import rejected

PROXY = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0"


def backend(**props: Any) -> list[dict]:
    documents = synth(lambda chart: FlaskBackend(chart, "api", image=IMAGE, **props))
    validate_strict(documents)
    return documents


def env_of(documents: list[dict]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(documents)["env"]}


# -- no CPU limit ----------------------------------------------------------------------------------


def test_without_cpu_limit_workers_come_from_the_cpu_request() -> None:
    documents = backend(resources=Resources(cpu_request_millicores=1500, cpu_limit_millicores=None))

    resources = container(documents)["resources"]
    assert "cpu" not in resources["limits"]
    assert resources["requests"]["cpu"] == "1500m"
    env = env_of(documents)
    # Never limits.cpu without a limit: the Downward API would give the node's allocatable CPU.
    assert "CPU_LIMIT_MILLICORES" not in env
    assert env["CPU_REQUEST_MILLICORES"] == {
        "resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}
    }


def test_without_cpu_limit_checkov_skips_only_its_cpu_limit_check_with_a_reason() -> None:
    documents = backend(resources=Resources(cpu_limit_millicores=None))

    annotations = by_kind(documents, "Deployment")["metadata"]["annotations"]
    check, _, reason = annotations["checkov.io/skip1"].partition("=")
    assert check == "CKV_K8S_11"
    assert "cpu_limit_millicores" in reason
    assert "=" not in reason  # checkov splits the annotation at '='; more than one breaks it


def test_without_cpu_limit_kube_score_skips_its_resources_check_with_a_reason() -> None:
    documents = backend(resources=Resources(cpu_limit_millicores=None), migrations=Migrations())

    for kind in ("Deployment", "Job"):
        annotations = by_kind(documents, kind)["metadata"]["annotations"]
        assert "container-resources" in annotations["kube-score/ignore"].split(","), kind
        reason = annotations["kube-score/ignore-reason.container-resources"]
        assert "cpu_limit_millicores" in reason, kind


def test_with_a_cpu_limit_neither_checker_skips_a_resources_check() -> None:
    documents = backend(migrations=Migrations())

    for kind in ("Deployment", "Job"):
        annotations = by_kind(documents, kind)["metadata"]["annotations"]
        assert "checkov.io/skip1" not in annotations, kind
        # Only the default's open egress, whose reason is in the manifest too.
        assert annotations["kube-score/ignore"] == "pod-networkpolicy", kind


# -- envFrom, init containers, sidecars, priority, service account ---------------------------------


def test_env_from_sources_come_before_the_backends_own_so_config_wins() -> None:
    documents = backend(
        env_from=(
            EnvFrom(config_map="platform-settings"),
            EnvFrom(secret="vendor-keys", optional=True, prefix="VENDOR_"),
        )
    )

    sources = container(documents)["envFrom"]
    assert sources[:2] == [
        {"configMapRef": {"name": "platform-settings", "optional": False}},
        {"secretRef": {"name": "vendor-keys", "optional": True}, "prefix": "VENDOR_"},
    ]
    assert sources[2]["configMapRef"]["name"] == "api-config"


def test_init_containers_inherit_the_apps_hardening_and_get_small_resources() -> None:
    documents = backend(
        init_containers=(ExtraContainer("warm", IMAGE, command=("python", "-m", "warm")),)
    )

    (init,) = pod_spec(documents)["initContainers"]
    app_context = container(documents)["securityContext"]
    assert init["securityContext"] == app_context
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert init["resources"]["requests"] == {
        "cpu": "50m",
        "ephemeral-storage": "1Gi",
        "memory": "64Mi",
    }
    assert init["resources"]["limits"]["cpu"] == "250m"
    assert "restartPolicy" not in init


def test_sidecars_are_native_first_init_containers_valid_from_1_29() -> None:
    documents = backend(
        init_containers=(ExtraContainer("warm", IMAGE),),
        sidecars=(ExtraContainer("proxy", PROXY, args=("--port=5432",)),),
    )

    proxy, warm = pod_spec(documents)["initContainers"]
    assert (proxy["name"], proxy["restartPolicy"]) == ("proxy", "Always")
    assert warm["name"] == "warm"
    assert proxy["resources"]["limits"] == {
        "cpu": "250m",
        "ephemeral-storage": "1Gi",
        "memory": "64Mi",
    }
    assert len(pod_spec(documents)["containers"]) == 1


def test_native_sidecars_keep_the_deployments_escape_hatch() -> None:
    def build(chart: cdk8s.Chart) -> None:
        api = FlaskBackend(chart, "api", image=IMAGE, sidecars=(ExtraContainer("proxy", PROXY),))
        cdk8s.ApiObject.of(api.deployment).metadata.add_annotation("team.example.com/owner", "x")
        cdk8s.ApiObject.of(api.deployment).add_json_patch(
            cdk8s.JsonPatch.add("/spec/revisionHistoryLimit", 3)
        )

    deployment = by_kind(synth(build), "Deployment")

    assert deployment["metadata"]["annotations"]["team.example.com/owner"] == "x"
    assert deployment["spec"]["revisionHistoryLimit"] == 3
    assert deployment["spec"]["template"]["spec"]["initContainers"][0]["name"] == "proxy"


def test_sidecars_can_be_plain_containers_for_clusters_before_1_29() -> None:
    documents = backend(sidecars=(ExtraContainer("proxy", PROXY),), native_sidecars=False)

    app, proxy = pod_spec(documents)["containers"]
    assert (app["name"], proxy["name"]) == ("api", "proxy")
    assert "initContainers" not in pod_spec(documents)


def test_migrations_wait_after_the_sidecars_and_before_the_init_containers() -> None:
    documents = backend(
        init_containers=(ExtraContainer("warm", IMAGE),),
        sidecars=(ExtraContainer("proxy", PROXY),),
        migrations=Migrations(),
    )

    names = [c["name"] for c in pod_spec(documents)["initContainers"]]
    assert names == ["proxy", "wait-for-migrations", "warm"]
    # The Job migrates through the sidecar, and does not run the app's init containers (they
    # may need the schema it is about to make).
    job_pod = by_kind(documents, "Job")["spec"]["template"]["spec"]
    assert [c["name"] for c in job_pod["initContainers"]] == ["proxy"]
    assert job_pod["initContainers"][0]["restartPolicy"] == "Always"


def test_a_migration_job_without_cpu_limit_carries_the_same_reasoned_skip() -> None:
    documents = backend(resources=Resources(cpu_limit_millicores=None), migrations=Migrations())

    deployment, job = by_kind(documents, "Deployment"), by_kind(documents, "Job")
    assert job["metadata"]["annotations"]["checkov.io/skip1"].startswith("CKV_K8S_11=")
    assert "cpu" not in job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    skip = deployment["metadata"]["annotations"]["checkov.io/skip1"]
    assert job["metadata"]["annotations"]["checkov.io/skip1"] == skip


def test_extra_containers_follow_the_app_without_a_cpu_limit() -> None:
    documents = backend(
        resources=Resources(cpu_limit_millicores=None),
        sidecars=(ExtraContainer("proxy", PROXY),),
    )

    (proxy,) = pod_spec(documents)["initContainers"]
    assert "cpu" not in proxy["resources"]["limits"]


def test_security_context_overrides_within_restricted_are_kept() -> None:
    sidecar = ExtraContainer(
        "proxy",
        PROXY,
        security_context={"runAsUser": 65532, "capabilities": {"add": ["NET_BIND_SERVICE"]}},
        mounts={"/tmp": "tmp"},
    )

    (proxy,) = pod_spec(backend(sidecars=(sidecar,)))["initContainers"]

    assert proxy["securityContext"]["runAsUser"] == 65532
    assert proxy["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["NET_BIND_SERVICE"],
    }
    assert proxy["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_priority_class_and_an_existing_service_account() -> None:
    documents = backend(priority_class_name="business-critical", service_account="api-identity")

    spec = pod_spec(documents)
    assert spec["priorityClassName"] == "business-critical"
    assert spec["serviceAccountName"] == "api-identity"
    assert spec["automountServiceAccountToken"] is False
    assert [d for d in documents if d["kind"] == "ServiceAccount"] == []


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"max_request_bytes": 0}, "max_request_bytes must be >= 1, got 0"),
        (
            {"env_from": (EnvFrom(),)},
            "env_from[0] must name a config_map or a secret, got config_map=None, secret=None",
        ),
        (
            {"env_from": (EnvFrom(secret="a", prefix="1x"),)},
            "env_from[0].prefix must be empty or a C identifier, got '1x'",
        ),
        (
            {"sidecars": (ExtraContainer("proxy", PROXY, security_context={"privileged": True}),)},
            "sidecars[0].security_context.privileged must not be True: the namespace enforces "
            'Pod Security "restricted", got True',
        ),
        (
            {"sidecars": (ExtraContainer("proxy", PROXY, security_context={"runAsUser": 0}),)},
            "sidecars[0].security_context.runAsUser must not be 0",
        ),
        (
            {
                "init_containers": (
                    ExtraContainer(
                        "chown", PROXY, security_context={"capabilities": {"add": ["CHOWN"]}}
                    ),
                )
            },
            "init_containers[0].security_context.capabilities may only add NET_BIND_SERVICE",
        ),
        (
            {"sidecars": (ExtraContainer("proxy", PROXY, security_context={"hostPID": True}),)},
            "sidecars[0].security_context has unknown or forbidden fields ['hostPID']",
        ),
        (
            {"sidecars": (ExtraContainer("api", PROXY),)},
            "sidecars[0].name must be unique in the pod",
        ),
        (
            {"sidecars": (ExtraContainer("proxy", PROXY, mounts={"/cache": "cache"}),)},
            "sidecars[0].mounts['/cache'] must name a volume of the pod (tmp), got 'cache'",
        ),
        (
            {"init_containers": (ExtraContainer("warm", "busybox"),)},
            "init_containers[0].image must pin a tag or a digest",
        ),
        ({"priority_class_name": "High"}, "priority_class_name must be a DNS subdomain"),
        ({"service_account": "default"}, "service_account must not be 'default'"),
    ],
)
def test_bad_platform_input_is_one_line_naming_the_field(props: dict, message: str) -> None:
    assert rejected(ValueError, **props).startswith(message)


def test_the_app_defaults_to_the_constructs_body_limit() -> None:
    from backend_api import config as app_config
    from flask_backend import contract as construct

    assert construct.DEFAULT_MAX_REQUEST_BYTES == app_config.DEFAULT_MAX_REQUEST_BYTES
