"""Whole FlaskBackend scenarios as YAML snapshots, one readable file per scenario.

The files under tests/__snapshots__/test_construct_snapshots/ are generated: review them like
code, refresh them with `pytest tests/test_construct_snapshots.py --snapshot-update`. They hold
only the fake values of tests.support.FAKE_SECRETS, never a real secret.
"""

from __future__ import annotations

# First: tests.support picks jsii's Node (the supported one from PyPI) before cdk8s starts it.
from tests.support import FAKE_SECRETS, synth, validate_strict

# isort: split
from collections.abc import Callable
from typing import Any

import cdk8s
import yaml

from flask_backend import (
    Autoscaling,
    EgressRule,
    FlaskBackend,
    NetworkPolicyOptions,
    Resources,
    Shutdown,
)

TAGGED_IMAGE = "registry.example.com/team/api:1.4.2"
PINNED_IMAGE = (
    "registry.example.com/team/api@sha256:"
    "4f2d3c8a9b1e7f6054d2c3b8a9e1f7d6c5b4a3928170f6e5d4c3b2a1908f7e6d"
)


def scenario(build: Callable[[cdk8s.Chart], Any]) -> str:
    """Synthesize one chart in namespace `backend`, check it strictly, and render it as YAML."""
    documents = synth(build)
    validate_strict(documents)
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def test_default_backend_with_secrets(yaml_snapshot: Any) -> None:
    # Every default: secrets as read-only files, 2 replicas, PDB, ingress-only NetworkPolicy.
    rendered = scenario(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image=TAGGED_IMAGE,
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
            image=TAGGED_IMAGE,
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
