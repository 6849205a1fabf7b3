"""Whole FlaskBackend scenarios as YAML snapshots, one readable file per scenario.

The files under tests/__snapshots__/test_construct_snapshots/ are generated: review them like
code, refresh them with `pytest tests/test_construct_snapshots.py --snapshot-update`. They hold
only the fake values of tests.support.FAKE_SECRETS, never a real secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cdk8s
import yaml

from flask_backend import (
    Autoscaling,
    EgressRule,
    EnvFrom,
    ExtraContainer,
    FlaskBackend,
    GatewayRef,
    HttpRoute,
    Ingress,
    Migrations,
    NetworkPolicyOptions,
    Resources,
    Shutdown,
)
from tests.support import (
    FAKE_SECRETS,
    IMAGE,
    PINNED_IMAGE,
    synth,
    validate_strict,
)


def scenario(build: Callable[[cdk8s.Chart], Any]) -> str:
    """Synthesize one chart in namespace `backend`, check it strictly on the oldest and newest
    supported Kubernetes, and render it as YAML."""
    documents = synth(build)
    validate_strict(documents)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def test_default_backend_with_secrets(yaml_snapshot: Any) -> None:
    # Every default: secrets as read-only files, 2 replicas, PDB, ingress-only NetworkPolicy.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=IMAGE,
            config={"LOG_LEVEL": "info", "ENVIRONMENT": "production"},
            secrets=FAKE_SECRETS,
        )
    )

    assert rendered == yaml_snapshot


def test_existing_secret_with_autoscaling_and_egress_policy(yaml_snapshot: Any) -> None:
    # A Secret managed elsewhere, an HPA instead of fixed replicas, egress only to DNS and the
    # database, ingress only from the frontend namespace.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=IMAGE,
            config={"LOG_LEVEL": "warning"},
            existing_secret="api-credentials",
            autoscaling=Autoscaling(min_replicas=3, max_replicas=12, cpu_utilization_percent=65),
            network_policy=NetworkPolicyOptions(
                ingress_namespaces=("frontend",),
                egress=(
                    EgressRule(
                        namespace="database",
                        ports=(5432,),
                        pod_labels={"app.kubernetes.io/name": "postgres"},
                    ),
                ),
            ),
        )
    )

    assert rendered == yaml_snapshot


def test_digest_pinned_image_with_secrets_as_env(yaml_snapshot: Any) -> None:
    # The opt-in to secrets as environment variables, on an image pinned by digest.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=PINNED_IMAGE,
            secrets=FAKE_SECRETS,
            secrets_as_env=True,
        )
    )

    assert rendered == yaml_snapshot


def test_single_replica_with_custom_port_resources_and_shutdown(yaml_snapshot: Any) -> None:
    # One pod (so no PodDisruptionBudget), no NetworkPolicy, and every number changed.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            name="orders-api",
            image=PINNED_IMAGE,
            replicas=1,
            port=9000,
            service_port=8080,
            resources=Resources(
                cpu_request_millicores=100,
                cpu_limit_millicores=500,
                memory_request_mib=128,
                memory_limit_mib=512,
                tmp_size_mib=32,
            ),
            shutdown=Shutdown(
                pre_stop_sleep_seconds=5, graceful_timeout_seconds=60, margin_seconds=10
            ),
            network_policy=None,
            image_pull_secrets=["registry-credentials"],
        )
    )

    assert rendered == yaml_snapshot


def test_routed_with_ingress_and_http_route(yaml_snapshot: Any) -> None:
    # Both routes to the Service's http port, TLS, a 5 MiB body limit at the edge and in the
    # app, and the NetworkPolicy admitting the controllers' namespaces besides the frontend.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=IMAGE,
            secrets=FAKE_SECRETS,
            max_request_bytes=5 * 1024 * 1024,
            network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)),
            ingress=Ingress(
                host="api.example.com",
                path="/api",
                tls_secret="api-example-com-tls",
                class_name="nginx",
                annotations={"cert-manager.io/cluster-issuer": "letsencrypt"},
            ),
            http_route=HttpRoute(
                parent_refs=(GatewayRef("public", namespace="gateways", section_name="https"),),
                hostnames=("api.example.com",),
                path="/api",
            ),
        )
    )

    assert rendered == yaml_snapshot


def test_platform_knobs_without_cpu_limit(yaml_snapshot: Any) -> None:
    # No CPU limit (workers from the request, checkov's CPU-limit check skipped with a reason),
    # envFrom of objects managed elsewhere, an init container, a native sidecar (valid from
    # Kubernetes 1.29), a priority class and a ServiceAccount managed elsewhere.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=PINNED_IMAGE,
            existing_secret="api-credentials",
            resources=Resources(cpu_request_millicores=1500, cpu_limit_millicores=None),
            env_from=(
                EnvFrom(config_map="platform-settings"),
                EnvFrom(secret="vendor-keys", optional=True, prefix="VENDOR_"),
            ),
            init_containers=(
                ExtraContainer(
                    "warm-cache",
                    PINNED_IMAGE,
                    command=("python", "-m", "warm"),
                    mounts={"/tmp": "tmp"},
                ),
            ),
            sidecars=(
                ExtraContainer(
                    "cloud-sql-proxy",
                    "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0",
                    args=("--port=5432", "shop:europe-west1:db"),
                    security_context={"runAsUser": 65532, "runAsGroup": 65532},
                ),
            ),
            priority_class_name="business-critical",
            service_account="api-workload-identity",
            # Its wait container runs after the sidecar (which it may need) and before the
            # user's init container; the Job gets the sidecar but not that init container.
            migrations=Migrations(),
        ),
    )

    assert rendered == yaml_snapshot
