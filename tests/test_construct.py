"""FlaskBackend's defaults and options, one behaviour per test.

Each test synthesizes a chart in-process (tests.support.synth) and reads the objects as dicts.
Every scenario also passes the official Kubernetes schemas of the oldest and newest supported
minor in strict mode: `backend()` below validates whatever it synthesizes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import cdk8s
import cdk8s_plus_27 as kplus
import pytest
import yaml
from constructs import Construct

from flask_backend import (
    DEFAULT_PORT,
    RUN_AS_GROUP,
    RUN_AS_USER,
    SECRETS_DIR,
    TMP_DIR,
    Autoscaling,
    EgressRule,
    FlaskBackend,
    GatewayRef,
    HttpRoute,
    Ingress,
    Metrics,
    Migrations,
    NetworkPolicyOptions,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from flask_backend.pod import RESTRICTED_VOLUME_TYPES
from tests.support import (
    FAKE_SECRETS,
    IMAGE,
    by_kind,
    container,
    pod_spec,
    secret_values,
    synth,
    validate_strict,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
SELECTOR = {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}
CHECKSUM = "checksum/config"


def backend(
    namespace: str | None = "backend", **props: Any
) -> tuple[FlaskBackend, list[dict[str, Any]]]:
    """Synthesize one backend with id "api" (image IMAGE unless given) and validate it strictly."""
    built: list[FlaskBackend] = []
    documents = synth(
        lambda chart: built.append(FlaskBackend(chart, "api", **{"image": IMAGE, **props})),
        namespace=namespace,
    )
    validate_strict(documents)
    return built[0], documents


def manifests(**props: Any) -> list[dict[str, Any]]:
    return backend(**props)[1]


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return [d["kind"] for d in documents]


def env_of(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The container's env as name -> value (or valueFrom)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(documents)["env"]}


def checksum(documents: list[dict[str, Any]]) -> str:
    annotations = by_kind(documents, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return str(annotations[CHECKSUM])


def volumes_by_name(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(documents).get("volumes", [])}


def mounts_by_path(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container(documents).get("volumeMounts", [])}


# -- names and labels --------------------------------------------------------------------------


def test_every_object_is_named_after_name_without_hash_suffix() -> None:
    # Given a backend with secrets and autoscaling, so that every kind of child exists
    documents = manifests(name="orders", secrets=FAKE_SECRETS, autoscaling=Autoscaling())

    # When the objects are listed by kind and name
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}

    # Then each carries the given name (ConfigMap and Secret with a suffix), no hash
    assert names == {
        ("ServiceAccount", "orders"),
        ("ConfigMap", "orders-config"),
        ("Secret", "orders-secrets"),
        ("Deployment", "orders"),
        ("Service", "orders"),
        ("PodDisruptionBudget", "orders"),
        ("NetworkPolicy", "orders"),
        ("HorizontalPodAutoscaler", "orders"),
    }


def test_name_defaults_to_the_construct_id() -> None:
    # Given a backend without a name, whose id is "api"
    built, documents = backend()

    # Then the id names the backend and its objects
    assert built.name == "api"
    assert {d["metadata"]["name"] for d in documents} == {"api", "api-config"}


def test_every_object_lives_in_the_chart_namespace() -> None:
    documents = manifests(secrets=FAKE_SECRETS)

    assert {d["metadata"]["namespace"] for d in documents} == {"backend"}


def test_every_object_and_the_pod_template_carry_the_recommended_labels() -> None:
    # Given a backend pinned to a tagged image
    documents = manifests(secrets=FAKE_SECRETS, autoscaling=Autoscaling())
    expected = {
        "app.kubernetes.io/name": "api",
        "app.kubernetes.io/instance": "api",
        "app.kubernetes.io/version": "1.4.2",
        "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": "api",
        "app.kubernetes.io/managed-by": "cdk8s",
    }

    # When the labels of every object and of the pod template are read
    labels = [d["metadata"]["labels"] for d in documents]
    template = by_kind(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]

    # Then they are exactly the recommended set: nothing derived from the construct path
    assert labels == [expected] * len(documents)
    assert template == expected


def test_version_label_defaults_to_the_start_of_the_image_digest() -> None:
    documents = manifests(image=f"registry.example.com/team/api@{DIGEST}")

    assert by_kind(documents, "Deployment")["metadata"]["labels"]["app.kubernetes.io/version"] == (
        "0123456789ab"
    )


@pytest.mark.parametrize(
    ("tag", "version"),
    [("1.0_", "1.0"), ("_", ""), ("_v1.", "v1"), ("v" + "1" * 127, "v" + "1" * 62)],
)
def test_version_label_from_an_odd_image_tag_is_trimmed_to_a_valid_label(
    tag: str, version: str
) -> None:
    # Given an image whose tag is valid but no valid label value (long, or odd at either end)
    documents = manifests(image=f"registry.example.com/team/api:{tag}")

    # Then the version label is the tag cut to 63 characters and trimmed, as Helm charts do
    assert by_kind(documents, "Service")["metadata"]["labels"]["app.kubernetes.io/version"] == (
        version
    )


def test_version_component_and_part_of_labels_can_be_set() -> None:
    documents = manifests(version="2024.1", component="api", part_of="shop")

    labels = by_kind(documents, "Service")["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "2024.1"
    assert labels["app.kubernetes.io/component"] == "api"
    assert labels["app.kubernetes.io/part-of"] == "shop"


def test_every_selector_matches_only_name_and_instance() -> None:
    # Given a backend with every selecting object (PDB, NetworkPolicy, spread, anti-affinity)
    documents = manifests()
    deployment = by_kind(documents, "Deployment")
    spec = pod_spec(documents)
    anti_affinity = spec["affinity"]["podAntiAffinity"]
    (preferred,) = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"]

    # When every selector is collected
    service_selector = by_kind(documents, "Service")["spec"]["selector"]
    label_selectors = [
        deployment["spec"]["selector"],
        by_kind(documents, "PodDisruptionBudget")["spec"]["selector"],
        by_kind(documents, "NetworkPolicy")["spec"]["podSelector"],
        preferred["podAffinityTerm"]["labelSelector"],
        *(c["labelSelector"] for c in spec["topologySpreadConstraints"]),
    ]

    # Then each selects by name and instance only: never version or construct path
    assert service_selector == SELECTOR
    assert label_selectors == [{"matchLabels": SELECTOR}] * len(label_selectors)


def test_pod_template_carries_no_construct_path_label() -> None:
    documents = manifests()

    labels = by_kind(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not any(key.startswith("cdk8s.io/") for key in labels)


def test_moving_the_construct_to_another_path_changes_no_object() -> None:
    # Given the same backend at the chart root and nested under another construct and id
    at_root = synth(lambda chart: FlaskBackend(chart, "api", image=IMAGE, secrets=FAKE_SECRETS))

    # When it moves
    moved = synth(
        lambda chart: FlaskBackend(
            Construct(chart, "tier"), "moved-backend", name="api", image=IMAGE, secrets=FAKE_SECRETS
        )
    )

    # Then the Deployment (and every other object) is identical: no pod rolls, no selector change
    assert by_kind(moved, "Deployment") == by_kind(at_root, "Deployment")
    assert moved == at_root


def test_changing_the_image_leaves_every_selector_unchanged() -> None:
    # Given a backend on one image
    before = manifests(image="registry.example.com/team/api:1.4.2")

    # When the image (and so the version label) changes
    after = manifests(image=f"registry.example.com/team/api@{DIGEST}")

    # Then the immutable Deployment selector and every other selector stay the same
    def selectors(documents: list[dict[str, Any]]) -> list[Any]:
        return [
            by_kind(documents, "Deployment")["spec"]["selector"],
            by_kind(documents, "Service")["spec"]["selector"],
            by_kind(documents, "PodDisruptionBudget")["spec"]["selector"],
            by_kind(documents, "NetworkPolicy")["spec"]["podSelector"],
        ]

    assert container(after)["image"] != container(before)["image"]
    assert selectors(after) == selectors(before)


def test_two_backends_in_one_chart_do_not_collide() -> None:
    # Given two backends in one chart
    def build(chart: cdk8s.Chart) -> None:
        FlaskBackend(chart, "api", image=IMAGE, secrets=FAKE_SECRETS)
        FlaskBackend(chart, "worker", image=IMAGE, secrets=FAKE_SECRETS)

    # When the chart is synthesized
    documents = synth(build)
    validate_strict(documents)

    # Then no two objects of one kind share a name, and each selects only its own pods
    keys = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert len(keys) == len(set(keys)) == 14
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert [
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in deployments
    ] == [
        "api",
        "worker",
    ]
    services = [d for d in documents if d["kind"] == "Service"]
    assert [s["spec"]["selector"]["app.kubernetes.io/instance"] for s in services] == [
        "api",
        "worker",
    ]
    mounted = [d["spec"]["template"]["spec"]["volumes"][1]["secret"] for d in deployments]
    assert [m["secretName"] for m in mounted] == ["api-secrets", "worker-secrets"]


# -- Pod Security "restricted" -----------------------------------------------------------------


def test_pod_runs_as_a_non_root_user_and_group_above_10000() -> None:
    documents = manifests()

    for context in (
        pod_spec(documents)["securityContext"],
        container(documents)["securityContext"],
    ):
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == RUN_AS_USER >= 10000
        assert context["runAsGroup"] == RUN_AS_GROUP >= 10000
    assert pod_spec(documents)["securityContext"]["fsGroup"] == RUN_AS_GROUP


def test_container_cannot_gain_privileges_and_drops_all_capabilities() -> None:
    context = container(manifests())["securityContext"]

    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_seccomp_profile_is_runtime_default_on_pod_and_container() -> None:
    documents = manifests()

    assert pod_spec(documents)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(documents)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_pod_shares_no_host_namespace_and_binds_no_host_port() -> None:
    documents = manifests()
    spec = pod_spec(documents)

    assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPort" not in port for port in container(documents)["ports"])


def test_root_filesystem_is_read_only_and_only_memory_emptydirs_are_writable() -> None:
    # Given a backend with secrets and metrics (a secret volume, the /tmp and metrics emptyDirs)
    documents = manifests(secrets=FAKE_SECRETS, metrics=Metrics())
    volumes = volumes_by_name(documents)

    # When the mounts not marked read-only are collected
    writable = [m for m in container(documents)["volumeMounts"] if not m.get("readOnly")]

    # Then the root filesystem is read-only and only /tmp and the metrics files, in memory and
    # bounded, are writable
    assert container(documents)["securityContext"]["readOnlyRootFilesystem"] is True
    assert [m["mountPath"] for m in writable] == [TMP_DIR, "/run/metrics"]
    for mount in writable:
        assert volumes[mount["name"]]["emptyDir"]["medium"] == "Memory"
        assert volumes[mount["name"]]["emptyDir"]["sizeLimit"] == "16Mi"


def test_every_volume_is_of_a_type_restricted_admits() -> None:
    documents = manifests(secrets=FAKE_SECRETS)

    for volume in pod_spec(documents)["volumes"]:
        assert set(volume) - {"name"} <= set(RESTRICTED_VOLUME_TYPES)


def test_pod_uses_a_dedicated_service_account_without_a_token() -> None:
    documents = manifests()
    account = by_kind(documents, "ServiceAccount")

    assert pod_spec(documents)["serviceAccountName"] == account["metadata"]["name"] == "api"
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(documents)["automountServiceAccountToken"] is False


def test_service_links_are_disabled() -> None:
    # Service links would inject one variable per Service of the namespace, e.g. API_PORT.
    assert pod_spec(manifests())["enableServiceLinks"] is False


# -- config and secrets ------------------------------------------------------------------------


def test_config_reaches_the_app_as_prefixed_environment_from_the_config_map() -> None:
    documents = manifests(config={"LOG_LEVEL": "debug", "ENVIRONMENT": "staging"})

    assert by_kind(documents, "ConfigMap")["data"] == {
        "LOG_LEVEL": "debug",
        "ENVIRONMENT": "staging",
    }
    assert container(documents)["envFrom"] == [
        {"configMapRef": {"name": "api-config"}, "prefix": "FLASK_"}
    ]


def test_empty_config_values_reach_the_config_map() -> None:
    # An empty value is still a setting (cdk8s-plus-27 alone would drop an all-empty data map).
    documents = manifests(config={"FEATURE_SEARCH": "", "FEATURE_EXPORT": ""})

    assert by_kind(documents, "ConfigMap")["data"] == {"FEATURE_SEARCH": "", "FEATURE_EXPORT": ""}


def test_config_and_secret_text_arrives_unchanged() -> None:
    # Given values YAML must quote or escape: controls, quotes, newlines, YAML 1.1 booleans, emoji
    text = {
        "ODD": "\x01\x1b[0m \"quoted\" 'single' \n#not-a-comment: yes",
        "BOOL": "on",
        "EMOJI": "ünï 🚀",
    }
    # A secret file may hold NUL (an environment variable may not: see test_construct_errors)
    secrets = {**text, "ODD": "\x00" + text["ODD"], "SECRET_KEY": FAKE_SECRETS["SECRET_KEY"]}

    # When synthesized and read back
    documents = manifests(config=text, secrets=secrets)

    # Then every value is exactly what was given
    assert by_kind(documents, "ConfigMap")["data"] == text
    assert secret_values(by_kind(documents, "Secret")) == secrets


def test_env_prefix_can_be_changed() -> None:
    documents = manifests(config={"LOG_LEVEL": "debug"}, env_prefix="APP_")

    assert container(documents)["envFrom"][0]["prefix"] == "APP_"


def test_secrets_are_mounted_as_read_only_files_by_default() -> None:
    # Given a backend with secrets
    documents = manifests(secrets=FAKE_SECRETS)

    # Then they sit in a Secret, mounted read-only at SECRETS_DIR, where the app reads them
    assert secret_values(by_kind(documents, "Secret")) == FAKE_SECRETS
    secret_volume = volumes_by_name(documents)["secrets"]["secret"]
    assert secret_volume == {"secretName": "api-secrets", "defaultMode": 0o440}
    assert mounts_by_path(documents)[SECRETS_DIR] == {
        "mountPath": SECRETS_DIR,
        "name": "secrets",
        "readOnly": True,
    }
    # with no variable to say where: a name with SECRET in it is what kube-linter's
    # env-var-secret and Polaris's sensitiveContainerEnvVar flag, whatever its value
    assert not [name for name in env_of(documents) if "SECRET" in name.upper()]
    # and never as environment variables
    assert all("secretRef" not in source for source in container(documents)["envFrom"])


def test_secrets_as_env_passes_secrets_as_prefixed_environment_instead_of_files() -> None:
    # Given a backend opting in to secrets as environment variables
    documents = manifests(secrets=FAKE_SECRETS, secrets_as_env=True)

    # Then the Secret feeds envFrom under the config prefix (FLASK_SECRET_KEY, as the app reads)
    assert container(documents)["envFrom"][1] == {
        "secretRef": {"name": "api-secrets"},
        "prefix": "FLASK_",
    }
    assert "secrets" not in volumes_by_name(documents)
    assert SECRETS_DIR not in mounts_by_path(documents)
    assert "SECRETS_DIR" not in env_of(documents)


def test_existing_secret_emits_no_secret_and_mounts_the_named_one() -> None:
    # Given a Secret managed elsewhere
    built, documents = backend(existing_secret="api-credentials")

    # Then no Secret is emitted, the named one is mounted, and the construct holds no Secret
    assert "Secret" not in kinds(documents)
    assert volumes_by_name(documents)["secrets"]["secret"]["secretName"] == "api-credentials"
    assert mounts_by_path(documents)[SECRETS_DIR]["readOnly"] is True
    assert built.secret is None


def test_no_secret_means_no_secret_volume() -> None:
    built, documents = backend(metrics=Metrics())

    assert "Secret" not in kinds(documents)
    assert set(volumes_by_name(documents)) == {"tmp", "metrics"}
    assert "SECRETS_DIR" not in env_of(documents)
    assert built.secret is None


@pytest.mark.parametrize("secrets_as_env", [False, True])
def test_no_secret_value_appears_outside_the_secret(secrets_as_env: bool) -> None:
    # Given a backend with distinctive fake secret values
    built, documents = backend(secrets=FAKE_SECRETS, secrets_as_env=secrets_as_env)

    # When every object but the Secret is rendered, along with the construct's repr
    rendered = yaml.safe_dump_all([d for d in documents if d["kind"] != "Secret"]) + repr(built)

    # Then no secret value is in there
    for value in FAKE_SECRETS.values():
        assert value not in rendered


def test_repr_names_the_backend_and_its_image_only() -> None:
    built, _ = backend(config={"LOG_LEVEL": "debug"}, secrets=FAKE_SECRETS)

    assert repr(built) == f"FlaskBackend(name='api', image='{IMAGE}')"


def test_config_checksum_is_identical_for_identical_input() -> None:
    first = manifests(config={"LOG_LEVEL": "debug"}, secrets=FAKE_SECRETS)

    second = manifests(config={"LOG_LEVEL": "debug"}, secrets=dict(FAKE_SECRETS))

    assert checksum(first) == checksum(second)


def test_config_change_rolls_the_pods() -> None:
    before = manifests(config={"LOG_LEVEL": "info"})

    after = manifests(config={"LOG_LEVEL": "debug"})

    assert checksum(after) != checksum(before)


def test_secret_value_change_rolls_the_pods() -> None:
    before = manifests(secrets=FAKE_SECRETS)

    after = manifests(
        secrets={**FAKE_SECRETS, "SECRET_KEY": "another-fake-secret-key-not-a-real-one"}
    )

    assert checksum(after) != checksum(before)


def test_switching_to_an_existing_secret_rolls_the_pods() -> None:
    before = manifests(existing_secret="api-credentials")

    after = manifests(existing_secret="api-credentials-v2")

    assert checksum(after) != checksum(before)


# -- rollouts and graceful shutdown ------------------------------------------------------------


def test_rolling_update_never_drops_below_the_desired_pods() -> None:
    strategy = by_kind(manifests(), "Deployment")["spec"]["strategy"]

    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
    }


def test_pre_stop_sleep_lets_endpoints_drain_before_sigterm() -> None:
    pre_stop = container(manifests())["lifecycle"]["preStop"]

    assert pre_stop == {"exec": {"command": ["sleep", str(Shutdown().pre_stop_sleep_seconds)]}}


def test_grace_period_covers_pre_stop_graceful_timeout_and_margin() -> None:
    # Given explicit shutdown numbers
    shutdown = Shutdown(pre_stop_sleep_seconds=7, graceful_timeout_seconds=20, margin_seconds=3)

    # When synthesized
    documents = manifests(shutdown=shutdown)

    # Then the grace period is their sum and the app's graceful timeout is the one given
    assert pod_spec(documents)["terminationGracePeriodSeconds"] == 7 + 20 + 3
    assert env_of(documents)["GRACEFUL_TIMEOUT"] == "20"
    assert container(documents)["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "7"]


def test_default_grace_period_is_derived_from_the_default_shutdown() -> None:
    documents = manifests()
    shutdown = Shutdown()

    assert pod_spec(documents)["terminationGracePeriodSeconds"] == (
        shutdown.pre_stop_sleep_seconds
        + shutdown.graceful_timeout_seconds
        + shutdown.margin_seconds
    )
    assert env_of(documents)["GRACEFUL_TIMEOUT"] == str(shutdown.graceful_timeout_seconds)


def test_zero_pre_stop_sleep_omits_the_hook() -> None:
    documents = manifests(shutdown=Shutdown(pre_stop_sleep_seconds=0))

    assert "lifecycle" not in container(documents)
    assert pod_spec(documents)["terminationGracePeriodSeconds"] == 25 + 5


def test_pod_disruption_budget_lets_one_pod_go_at_a_time() -> None:
    built, documents = backend(replicas=3)

    budget = by_kind(documents, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert built.pod_disruption_budget is not None


def test_pod_disruption_budget_never_holds_a_drain_for_pods_that_are_not_ready() -> None:
    # Readiness checks the database: in a database outage every pod is Running but not Ready,
    # and a budget counting them would let no node drain (kube-linter
    # pdb-unhealthy-pod-eviction-policy).
    budget = by_kind(manifests(replicas=3), "PodDisruptionBudget")

    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("replicas", [0, 1])
def test_no_pod_disruption_budget_below_two_replicas(replicas: int) -> None:
    # A budget on a single pod would block every node drain.
    built, documents = backend(replicas=replicas)

    assert "PodDisruptionBudget" not in kinds(documents)
    assert built.pod_disruption_budget is None
    assert by_kind(documents, "Deployment")["spec"]["replicas"] == replicas


@pytest.mark.parametrize(("min_replicas", "budget"), [(1, False), (2, True)])
def test_pod_disruption_budget_follows_the_autoscaler_minimum(
    min_replicas: int, budget: bool
) -> None:
    documents = manifests(replicas=5, autoscaling=Autoscaling(min_replicas=min_replicas))

    assert ("PodDisruptionBudget" in kinds(documents)) is budget


def test_pods_spread_across_nodes_and_zones() -> None:
    # Given a default backend
    spec = pod_spec(manifests())

    # Then topology spread (best effort) covers hosts and zones, plus a preferred anti-affinity
    constraints = spec["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert {c["whenUnsatisfiable"] for c in constraints} == {"ScheduleAnyway"}
    assert {c["maxSkew"] for c in constraints} == {1}
    (preferred,) = spec["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in spec["affinity"]["podAntiAffinity"]
    )


def test_spreading_can_be_turned_off() -> None:
    spec = pod_spec(manifests(scheduling=Scheduling(spread=False)))

    assert "topologySpreadConstraints" not in spec
    assert "affinity" not in spec


# -- probes, port and resources ----------------------------------------------------------------


def test_startup_readiness_and_liveness_probe_distinct_paths_on_the_app_port() -> None:
    # Given a default backend, with metrics (their port is listed too)
    app = container(manifests(metrics=Metrics()))
    probes = Probes()

    # When the three probes are read
    gets = [app[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")]

    # Then each asks its own path on the port the app listens on
    assert [g["path"] for g in gets] == [
        probes.startup_path,
        probes.readiness_path,
        probes.liveness_path,
    ]
    assert len({g["path"] for g in gets}) == 3
    assert {g["port"] for g in gets} == {DEFAULT_PORT}
    assert app["ports"] == [
        {"containerPort": DEFAULT_PORT, "name": "http"},
        {"containerPort": 9102, "name": "metrics"},
    ]


def test_one_health_path_may_serve_all_three_probes() -> None:
    # Given an image with a single health endpoint
    app = container(manifests(probes=Probes.one_path("/healthz")))

    # When the three probes are read
    paths = [
        app[f"{kind}Probe"]["httpGet"]["path"] for kind in ("startup", "readiness", "liveness")
    ]

    # Then each asks /healthz, with its own timing
    assert paths == ["/healthz"] * 3
    assert app["startupProbe"]["periodSeconds"] == 2
    assert app["livenessProbe"]["periodSeconds"] == Probes().period_seconds


def test_metrics_are_off_unless_asked_for() -> None:
    # Given a backend with default props (the image may not serve metrics)
    documents = manifests()

    # Then nothing names a metrics port, volume or variable
    assert [p["name"] for p in container(documents)["ports"]] == ["http"]
    assert set(volumes_by_name(documents)) == {"tmp"}
    assert not {"METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR"} & set(env_of(documents))
    assert [p["name"] for p in by_kind(documents, "Service")["spec"]["ports"]] == ["http"]
    assert len(by_kind(documents, "NetworkPolicy")["spec"]["ingress"]) == 1


def test_startup_probe_gives_a_slow_boot_its_threshold() -> None:
    startup = container(manifests(probes=Probes(startup_failure_threshold=45)))["startupProbe"]

    assert startup["failureThreshold"] == 45
    assert startup["periodSeconds"] == 2


def test_custom_port_reaches_container_probes_and_app() -> None:
    documents = manifests(port=9000)
    app = container(documents)

    assert app["ports"][0] == {"containerPort": 9000, "name": "http"}
    assert {app[f"{k}Probe"]["httpGet"]["port"] for k in ("startup", "readiness", "liveness")} == {
        9000
    }
    assert env_of(documents)["PORT"] == "9000"
    # the Service and NetworkPolicy refer to the port by name, so they need no change
    assert by_kind(documents, "Service")["spec"]["ports"][0]["targetPort"] == "http"


def test_container_requests_and_limits_cpu_memory_and_ephemeral_storage() -> None:
    # Given explicit resources
    resources = Resources(
        cpu_request_millicores=100,
        cpu_limit_millicores=500,
        memory_request_mib=128,
        memory_limit_mib=512,
        ephemeral_storage_request_gib=1,
        ephemeral_storage_limit_gib=2,
        tmp_size_mib=32,
    )

    # When synthesized
    documents = manifests(resources=resources)

    # Then they reach the container, and /tmp is bounded by its own size
    assert container(documents)["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "2Gi"},
    }
    assert volumes_by_name(documents)["tmp"]["emptyDir"]["sizeLimit"] == "32Mi"


def test_default_resources_request_and_limit_everything() -> None:
    resources = container(manifests())["resources"]

    for bound in ("requests", "limits"):
        assert set(resources[bound]) == {"cpu", "memory", "ephemeral-storage"}
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_cpu_limit_reaches_the_app_through_the_downward_api() -> None:
    # gunicorn sizes its workers from this, not from the node's cores.
    assert env_of(manifests())["CPU_LIMIT_MILLICORES"] == {
        "resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}
    }


# -- Service -----------------------------------------------------------------------------------


def test_service_is_cluster_ip_with_a_port_named_http_targeting_the_pod_port_by_name() -> None:
    service = by_kind(manifests(metrics=Metrics()), "Service")

    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "metrics", "port": 9102, "targetPort": "metrics"},
    ]
    assert service["spec"]["selector"] == SELECTOR


def test_service_port_can_be_changed() -> None:
    service = by_kind(manifests(service_port=8080), "Service")

    assert service["spec"]["ports"][0] == {"name": "http", "port": 8080, "targetPort": "http"}


def test_service_host_and_url_name_the_service_in_its_namespace() -> None:
    built, _ = backend(service_port=8080)

    assert built.service_host == "api.backend.svc.cluster.local"
    assert built.service_url == "http://api.backend.svc.cluster.local:8080"


def test_service_host_is_the_bare_name_without_a_namespace() -> None:
    built, _ = backend(namespace=None)

    assert built.service_host == "api"
    assert built.service_url == "http://api:80"


# -- autoscaling -------------------------------------------------------------------------------


def test_fixed_replicas_and_no_autoscaler_by_default() -> None:
    built, documents = backend()

    assert by_kind(documents, "Deployment")["spec"]["replicas"] == 2
    assert "HorizontalPodAutoscaler" not in kinds(documents)
    assert built.horizontal_pod_autoscaler is None


def test_autoscaling_adds_an_hpa_and_leaves_replicas_to_it() -> None:
    # Given autoscaling
    documents = manifests(
        replicas=4,
        autoscaling=Autoscaling(min_replicas=3, max_replicas=8, cpu_utilization_percent=60),
    )

    # Then an autoscaling/v2 HPA scales the Deployment on CPU, and the Deployment has no
    # replicas a re-apply would reset
    hpa = by_kind(documents, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        }
    ]
    assert "replicas" not in by_kind(documents, "Deployment")["spec"]


# -- NetworkPolicy -----------------------------------------------------------------------------


SAME_NAMESPACE = {"podSelector": {}}


def test_network_policy_admits_the_namespace_to_the_http_port_only_and_leaves_egress_open() -> None:
    # Any pod of the cluster could reach the http port: it now takes a pod of the backend's
    # own namespace (or a namespace the options name).
    policy = by_kind(manifests(metrics=None), "NetworkPolicy")

    assert policy["spec"] == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": "http"}], "from": [SAME_NAMESPACE]}],
    }


def test_default_network_policy_admits_the_routing_proxies_too() -> None:
    policy = by_kind(
        manifests(
            metrics=None,
            ingress=Ingress(host="api.example.com", class_name="nginx"),
            http_route=HttpRoute(parent_refs=(GatewayRef("public", namespace="gateways"),)),
        ),
        "NetworkPolicy",
    )

    assert policy["spec"]["ingress"] == [
        {
            "ports": [{"protocol": "TCP", "port": "http"}],
            "from": [
                SAME_NAMESPACE,
                *(
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                    for ns in ("ingress-nginx", "gateways")
                ),
            ],
        }
    ]


def test_network_policy_admits_the_monitoring_namespace_to_the_metrics_port_only() -> None:
    policy = by_kind(manifests(metrics=Metrics()), "NetworkPolicy")

    assert policy["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": "http"}], "from": [SAME_NAMESPACE]},
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": "metrics"}],
        },
    ]


def test_ingress_namespaces_narrow_who_reaches_the_http_port() -> None:
    options = NetworkPolicyOptions(ingress_namespaces=("frontend", "monitoring"))

    policy = by_kind(manifests(network_policy=options, metrics=None), "NetworkPolicy")

    assert policy["spec"]["ingress"] == [
        {
            "ports": [{"protocol": "TCP", "port": "http"}],
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                for ns in ("frontend", "monitoring")
            ],
        }
    ]


DNS_EGRESS = {
    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def test_egress_rules_deny_other_egress_but_always_allow_dns() -> None:
    # Given an egress rule to the database tier
    options = NetworkPolicyOptions(
        egress=(EgressRule(namespace="database", ports=(5432,), pod_labels={"app": "postgres"}),)
    )

    # When synthesized
    policy = by_kind(manifests(network_policy=options), "NetworkPolicy")

    # Then egress is restricted to DNS and that rule
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [
        DNS_EGRESS,
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "database"}
                    },
                    "podSelector": {"matchLabels": {"app": "postgres"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 5432}],
        },
    ]


def test_empty_egress_denies_everything_but_dns() -> None:
    policy = by_kind(manifests(network_policy=NetworkPolicyOptions(egress=())), "NetworkPolicy")

    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [DNS_EGRESS]


def test_no_network_policy_when_none() -> None:
    built, documents = backend(network_policy=None)

    assert "NetworkPolicy" not in kinds(documents)
    assert built.network_policy is None


# -- pass-through options ----------------------------------------------------------------------


def test_image_and_pull_policy_reach_the_container() -> None:
    assert container(manifests())["imagePullPolicy"] == "Always"

    app = container(manifests(image_pull_policy="IfNotPresent"))

    assert app["image"] == IMAGE
    assert app["imagePullPolicy"] == "IfNotPresent"


def test_latest_tag_is_accepted_when_allowed() -> None:
    documents = manifests(image="registry.example.com/team/api:latest", allow_latest_tag=True)

    assert container(documents)["image"] == "registry.example.com/team/api:latest"


def test_latest_tag_with_a_digest_is_pinned() -> None:
    image = f"registry.example.com/team/api:latest@{DIGEST}"

    assert container(manifests(image=image))["image"] == image


def test_image_pull_secrets_reach_the_pod() -> None:
    spec = pod_spec(manifests(image_pull_secrets=["registry-credentials", "mirror"]))

    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}, {"name": "mirror"}]


def test_no_image_pull_secrets_by_default() -> None:
    assert "imagePullSecrets" not in pod_spec(manifests())


def test_extra_env_joins_the_backend_variables() -> None:
    env = env_of(manifests(env={"FEATURE_FLAGS": "search,export"}))

    assert env["FEATURE_FLAGS"] == "search,export"
    assert env["PORT"] == str(DEFAULT_PORT)


def test_extra_volumes_are_mounted_at_their_paths() -> None:
    # Given an extra memory volume for a cache
    def build(chart: cdk8s.Chart) -> None:
        cache = kplus.Volume.from_empty_dir(
            chart, "cache", "cache", medium=kplus.EmptyDirMedium.MEMORY
        )
        FlaskBackend(chart, "api", image=IMAGE, volumes={"/var/cache/api": cache})

    # When synthesized
    documents = synth(build)
    validate_strict(documents)

    # Then it is in the pod and mounted where asked, beside /tmp
    assert volumes_by_name(documents)["cache"] == {
        "name": "cache",
        "emptyDir": {"medium": "Memory"},
    }
    assert mounts_by_path(documents)["/var/cache/api"]["name"] == "cache"
    assert TMP_DIR in mounts_by_path(documents)


def test_pod_annotations_join_the_config_checksum() -> None:
    documents = manifests(pod_annotations={"prometheus.io/scrape": "true"})

    annotations = by_kind(documents, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert CHECKSUM in annotations


def test_node_selector_and_tolerations_reach_the_pod() -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}
    scheduling = Scheduling(node_selector={"kubernetes.io/arch": "arm64"}, tolerations=[toleration])

    spec = pod_spec(manifests(scheduling=scheduling))

    assert spec["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert spec["tolerations"] == [toleration]


def test_no_node_selector_or_tolerations_by_default() -> None:
    spec = pod_spec(manifests())

    assert "nodeSelector" not in spec
    assert "tolerations" not in spec


def test_longest_valid_name_synthesizes() -> None:
    name = "a" * 63

    documents = manifests(name=name)

    assert by_kind(documents, "Service")["metadata"]["name"] == name
    assert by_kind(documents, "ConfigMap")["metadata"]["name"] == f"{name}-config"


# -- children ----------------------------------------------------------------------------------


def test_children_are_exposed_for_composition() -> None:
    # Given a backend with every optional child
    built, _ = backend(secrets=FAKE_SECRETS, autoscaling=Autoscaling())

    # When each attribute is resolved to its Kubernetes object
    children = {
        attribute: cdk8s.ApiObject.of(getattr(built, attribute))
        for attribute in (
            "deployment",
            "service",
            "config_map",
            "secret",
            "service_account",
            "pod_disruption_budget",
            "network_policy",
            "horizontal_pod_autoscaler",
        )
    }

    # Then each is the object of the kind its name says
    assert {a: (o.kind, o.name) for a, o in children.items()} == {
        "deployment": ("Deployment", "api"),
        "service": ("Service", "api"),
        "config_map": ("ConfigMap", "api-config"),
        "secret": ("Secret", "api-secrets"),
        "service_account": ("ServiceAccount", "api"),
        "pod_disruption_budget": ("PodDisruptionBudget", "api"),
        "network_policy": ("NetworkPolicy", "api"),
        "horizontal_pod_autoscaler": ("HorizontalPodAutoscaler", "api"),
    }
    # And each is a plain cdk8s.ApiObject, the type every escape hatch works on
    assert all(isinstance(getattr(built, attribute), cdk8s.ApiObject) for attribute in children)


def test_children_allow_composition_on_top() -> None:
    # Given a chart that adds a label to the backend's Deployment through the exposed child
    def build(chart: cdk8s.Chart) -> None:
        built = FlaskBackend(chart, "api", image=IMAGE)
        cdk8s.ApiObject.of(built.deployment).metadata.add_label("team", "payments")

    # When synthesized
    documents = synth(build)
    validate_strict(documents)

    # Then the change is in the output
    assert by_kind(documents, "Deployment")["metadata"]["labels"]["team"] == "payments"


def test_escape_hatch_patches_on_every_child_land_in_the_output() -> None:
    # Given a JSON patch on each child, through ApiObject.of as users write it
    attributes = ("deployment", "service", "config_map", "secret", "migration_job")

    def build(chart: cdk8s.Chart) -> None:
        built = FlaskBackend(
            chart, "api", image=IMAGE, secrets=FAKE_SECRETS, migrations=Migrations()
        )
        for attribute in attributes:
            cdk8s.ApiObject.of(getattr(built, attribute)).add_json_patch(
                cdk8s.JsonPatch.add("/metadata/annotations", {"team.example.com/patched": "yes"}),
                cdk8s.JsonPatch.add(
                    f"/metadata/labels/patched-{attribute.replace('_', '-')}", "yes"
                ),
            )
        # And a pod-template field the props do not cover, with a label through the metadata
        deployment = cdk8s.ApiObject.of(built.deployment)
        deployment.add_json_patch(cdk8s.JsonPatch.add("/spec/revisionHistoryLimit", 3))
        deployment.metadata.add_label("team", "payments")

    # When synthesized
    documents = synth(build)
    validate_strict(documents)

    # Then every patch is in the output, on its own object only
    kinds = {"deployment": "Deployment", "service": "Service", "config_map": "ConfigMap"}
    kinds |= {"secret": "Secret", "migration_job": "Job"}
    for attribute, kind in kinds.items():
        metadata = by_kind(documents, kind)["metadata"]
        assert metadata["annotations"]["team.example.com/patched"] == "yes"
        label = f"patched-{attribute.replace('_', '-')}"
        assert metadata["labels"][label] == "yes"
        assert [d["kind"] for d in documents if label in d["metadata"]["labels"]] == [kind]
    deployment = by_kind(documents, "Deployment")
    assert deployment["spec"]["revisionHistoryLimit"] == 3
    assert deployment["metadata"]["labels"]["team"] == "payments"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "api"


def test_escape_hatches_replace_and_remove_what_the_backend_wrote() -> None:
    # Given a chart that changes fields the backend wrote, as the cdk8s docs show for any
    # ApiObject: replace the Service type, remove the Deployment's replicas (left to a GitOps
    # tool), and read the result back from the child itself
    read_back: list[dict[str, Any]] = []

    def build(chart: cdk8s.Chart) -> None:
        built = FlaskBackend(chart, "api", image=IMAGE)
        service = cdk8s.ApiObject.of(built.service)
        service.add_json_patch(cdk8s.JsonPatch.replace("/spec/type", "NodePort"))
        deployment = cdk8s.ApiObject.of(built.deployment)
        deployment.add_json_patch(cdk8s.JsonPatch.remove("/spec/replicas"))
        read_back.append(service.to_json())

    # When synthesized
    documents = synth(build)
    validate_strict(documents)

    # Then the output and the child's own JSON carry the changes
    assert by_kind(documents, "Service")["spec"]["type"] == "NodePort"
    assert read_back[0]["spec"]["type"] == "NodePort"
    assert "replicas" not in by_kind(documents, "Deployment")["spec"]


def test_output_is_plain_json_serializable() -> None:
    # Every value is a plain string, number, bool, list or dict: no token or object leaks through.
    json.dumps(manifests(secrets=FAKE_SECRETS, autoscaling=Autoscaling()))


def test_two_backends_with_the_same_name_in_one_chart_are_refused() -> None:
    # Given a chart with a backend named "api" inside one sub-construct
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "shop", namespace="shop")
    FlaskBackend(Construct(chart, "public"), "api", image=IMAGE)

    # When another sub-construct adds a backend with the same name
    internal = Construct(chart, "internal")
    with pytest.raises(ValueError, match="already emits in this App") as error:
        FlaskBackend(internal, "api", image=IMAGE)
    assert str(error.value) == (
        "name 'api' would emit Deployment 'api' in namespace 'shop', which 'shop/public/api' "
        "already emits in this App (kubectl would keep only one): pass a distinct name"
    )

    # Then a distinct name is accepted, and another chart may reuse the name
    FlaskBackend(internal, "api", name="internal-api", image=IMAGE)
    FlaskBackend(cdk8s.Chart(app, "other", namespace="other"), "api", image=IMAGE)


# -- hostile input and bad days (issue 10) -------------------------------------------------------


def test_checksum_cannot_be_reproduced_from_the_config_map_and_a_guessed_secret() -> None:
    # Given a backend whose database password is a 4-digit PIN, beside a random SECRET_KEY
    pin = f"{secrets.randbelow(10_000):04d}"
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": f"postgresql://api:{pin}@db.database.svc:5432/api",
    }
    config = {"LOG_LEVEL": "info"}
    documents = manifests(config=config, secrets=values)
    annotation = checksum(documents)

    # When someone who may read Deployments and ConfigMaps (Kubernetes' `view`) tries every PIN,
    # knowing everything else but SECRET_KEY, with the formula today's code used, and as an HMAC
    # keyed by what they can see or guess
    seen = by_kind(documents, "ConfigMap")["data"]
    reproduced = []
    for guess in (f"{n:04d}" for n in range(10_000)):
        guessed = {
            **values,
            "SECRET_KEY": "",
            "DATABASE_URL": values["DATABASE_URL"].replace(pin, guess),
        }
        for guessed_values in (guessed, {"DATABASE_URL": guessed["DATABASE_URL"]}):
            data = json.dumps([seen, guessed_values, None], sort_keys=True).encode()
            candidates = (
                hashlib.sha256(data).hexdigest(),
                hmac.new(b"", data, hashlib.sha256).hexdigest(),
                hmac.new(guess.encode(), data, hashlib.sha256).hexdigest(),
            )
            reproduced += [guess for candidate in candidates if candidate == annotation]

    # Then no guess reproduces the annotation: it cannot confirm the PIN
    assert reproduced == []
    assert pin not in annotation


def test_checksum_is_stable_across_synths_and_follows_the_secret_key() -> None:
    first = checksum(manifests(secrets=FAKE_SECRETS))
    again = checksum(manifests(secrets=dict(FAKE_SECRETS)))
    rotated = checksum(manifests(secrets={**FAKE_SECRETS, "SECRET_KEY": "k" * 32}))

    assert first == again != rotated


def test_twenty_thousand_config_keys_synthesize_in_under_two_seconds() -> None:
    # cdk8s-plus's ConfigMap copied its data once per key: 20,000 keys took 68.6 s.
    config = {f"SETTING_{i:05d}": f"value-{i}" for i in range(20_000)}

    def synthesize() -> tuple[float, str]:
        start = time.perf_counter()
        app = cdk8s.App()
        chart = cdk8s.Chart(app, "test", namespace="backend", disable_resource_name_hashes=True)
        FlaskBackend(chart, "api", image=IMAGE, config=config, secrets=FAKE_SECRETS)
        output = app.synth_yaml()
        return time.perf_counter() - start, output

    # Best of up to three: the machine is shared, and a timing is only ever too slow by noise.
    timings = []
    for _ in range(3):
        seconds, output = synthesize()
        timings.append(round(seconds, 2))
        if seconds < 2.0:
            break
    assert min(timings) < 2.0, timings
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = [d for d in yaml.load_all(output, Loader=loader) if d]
    assert by_kind(documents, "ConfigMap")["data"] == config


def test_extra_volume_paths_are_normalised() -> None:
    def build(chart: cdk8s.Chart) -> None:
        cache = kplus.Volume.from_empty_dir(chart, "cache", "cache")
        FlaskBackend(chart, "api", image=IMAGE, volumes={"//var/cache/./api/": cache})

    documents = synth(build)

    assert "/var/cache/api" in mounts_by_path(documents)


@pytest.mark.parametrize(("algorithm", "length"), [("sha384", 96), ("sha512", 128)])
def test_longer_digests_of_real_algorithms_are_accepted(algorithm: str, length: int) -> None:
    image = f"registry.example.com/team/api@{algorithm}:{'c' * length}"

    assert container(manifests(image=image))["image"] == image


def test_tolerations_as_a_tuple_all_reach_the_pod() -> None:
    tolerations = (
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    )

    spec = pod_spec(manifests(scheduling=Scheduling(tolerations=tolerations)))

    assert spec["tolerations"] == list(tolerations)
