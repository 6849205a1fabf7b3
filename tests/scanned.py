"""The backends the community's scanners judge (tests/test_checkov.py, tests/test_peer_linters.py):
the defaults with secrets, an existing Secret with autoscaling and restricted egress, and one
using every option that keeps Pod Security "restricted", with digest-pinned images in namespace
`backend`. (The scanners also judge dist/ and the examples: tests/test_peer_linters.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cdk8s
import cdk8s_plus_27 as kplus
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
    Metrics,
    Migrations,
    NetworkPolicyOptions,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from tests.support import FAKE_SECRETS, PINNED_IMAGE, synth

BACKENDS: dict[str, Callable[[cdk8s.Chart], Any]] = {
    "api": lambda chart: FlaskBackend(
        chart, "api", image=PINNED_IMAGE, secrets=FAKE_SECRETS, migrations=Migrations()
    ),
    "worker": lambda chart: FlaskBackend(
        chart,
        "worker",
        image=PINNED_IMAGE,
        existing_secret="worker-credentials",
        autoscaling=Autoscaling(),
        network_policy=NetworkPolicyOptions(
            ingress_namespaces=("frontend",),
            egress=(EgressRule(namespace="database", ports=(5432,)),),
        ),
    ),
    # Every option that keeps the pods within Pod Security "restricted" and checkov's checks:
    # all but the opt-outs (secrets_as_env, native_sidecars=False, allow_latest_tag) and the
    # ones that exclude another (existing_secret: the worker's). No CPU limit is the one opt-out
    # here: checkov's CPU-limit check is skipped on this Deployment, with its reason.
    "platform": lambda chart: FlaskBackend(
        chart,
        "platform",
        image=PINNED_IMAGE,
        name="platform",
        port=8080,
        service_port=8000,
        config={"LOG_LEVEL": "info"},
        secrets=FAKE_SECRETS,
        env_prefix="APP_",
        env={"FEATURE_FLAGS": "search"},
        image_pull_policy="IfNotPresent",
        image_pull_secrets=("registry-credentials",),
        version="2.0.1",
        component="api",
        part_of="shop",
        resources=Resources(cpu_limit_millicores=None),
        probes=Probes(startup_path="/started", readiness_path="/ready", liveness_path="/alive"),
        shutdown=Shutdown(pre_stop_sleep_seconds=5),
        autoscaling=Autoscaling(min_replicas=3, max_replicas=6),
        network_policy=NetworkPolicyOptions(
            ingress_namespaces=("frontend",),
            egress=(EgressRule(namespace="database", ports=(5432,), pod_labels={"app": "db"}),),
        ),
        scheduling=Scheduling(
            node_selector={"kubernetes.io/os": "linux"},
            tolerations=({"key": "dedicated", "operator": "Equal", "value": "api"},),
        ),
        pod_annotations={"example.com/team": "shop"},
        volumes={"/var/cache/app": kplus.Volume.from_empty_dir(chart, "cache", "cache")},
        migrations=Migrations(),
        metrics=Metrics(service_monitor=True, service_monitor_labels={"release": "prometheus"}),
        max_request_bytes=4 * 1024 * 1024,
        ingress=Ingress(host="api.example.com", tls_secret="api-tls", class_name="nginx"),
        http_route=HttpRoute(parent_refs=(GatewayRef("public", namespace="gateways"),)),
        env_from=(EnvFrom(config_map="platform-settings"),),
        init_containers=(ExtraContainer("warm", PINNED_IMAGE, command=("true",)),),
        sidecars=(ExtraContainer("proxy", PINNED_IMAGE),),
        priority_class_name="business-critical",
        service_account="platform-identity",
    ),
}


def write_backends(
    directory: Path, backends: Mapping[str, Callable[[cdk8s.Chart], Any]] = BACKENDS
) -> dict[str, list[dict]]:
    """Write each backend (of BACKENDS) to directory/<name>.yaml; return its objects by name."""
    written = {}
    for name, build in backends.items():
        documents = synth(build, namespace="backend")
        (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        written[name] = documents
    return written
