"""Issue 13 on a real control plane: the Ingress and the HTTPRoute (Gateway API CRDs installed
from their pinned Go module) accepted; pods with init containers and native sidecars, and pods
without a CPU limit, created by the controllers and admitted under Pod Security "restricted";
the dev profile's dist/ applied in one pass."""

from __future__ import annotations

from tests.support import FAKE_SECRETS, IMAGE

# isort: split
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
import pytest

from flask_backend import (
    EnvFrom,
    ExtraContainer,
    FlaskBackend,
    GatewayRef,
    HttpRoute,
    Ingress,
    NetworkPolicyOptions,
    Resources,
    RestrictedNamespace,
)
from tests.cluster.controlplane import ControlPlane
from tests.cluster.test_cluster_apply import eventually, get, ok, pods, synth

PROXY = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0"
GATEWAY_API_CRDS = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)


def chart_dir(outdir: Path, namespace: str, build: Callable[[cdk8s.Chart], Any]) -> Path:
    """One chart as a user writes it: the restricted Namespace first, then `build`'s objects."""
    app = cdk8s.App(outdir=str(outdir))
    chart = cdk8s.Chart(app, namespace, namespace=namespace, disable_resource_name_hashes=True)
    RestrictedNamespace(chart)
    build(chart)
    app.synth()
    return outdir


@pytest.fixture(scope="module")
def gateway_api(control_plane: ControlPlane) -> ControlPlane:
    control_plane.install_crds(*GATEWAY_API_CRDS)
    return control_plane


def test_ingress_and_http_route_are_accepted(gateway_api: ControlPlane, tmp_path: Path) -> None:
    namespace = "routed"
    outdir = chart_dir(
        tmp_path / "dist",
        namespace,
        lambda chart: FlaskBackend(
            chart,
            "flask-api",
            image=IMAGE,
            secrets=FAKE_SECRETS,
            max_request_bytes=5 * 1024 * 1024,
            network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)),
            ingress=Ingress(
                host="api.example.com", path="/api", tls_secret="api-tls", class_name="nginx"
            ),
            http_route=HttpRoute(
                parent_refs=(GatewayRef("public", namespace="gateways", section_name="https"),),
                hostnames=("api.example.com",),
                path="/api",
            ),
        ),
    )

    ok(gateway_api.kubectl("apply", "-f", str(outdir)))

    ingress = get(gateway_api, "ingress", "flask-api", "-n", namespace)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "flask-api", "port": {"name": "http"}}
    route = get(gateway_api, "httproute", "flask-api", "-n", namespace)
    assert route["spec"]["rules"][0]["backendRefs"][0]["port"] == 80
    # Stored as sent (the API server adds its defaults, e.g. the backendRef's group and kind).
    assert route["spec"]["parentRefs"][0]["name"] == "public"


def test_a_bad_http_route_is_refused_by_the_crds_own_rules(gateway_api: ControlPlane) -> None:
    # Guards the test above: the CRD really validates (a path must start with '/').
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "api"}}]}],
        },
    }
    result = gateway_api.kubectl("apply", "-f", "-", input=json.dumps(route))

    assert result.returncode != 0
    assert "value must be an absolute path and start with '/'" in result.stderr


def test_init_containers_and_native_sidecars_are_admitted_under_restricted(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    namespace = "sidecars"
    # Managed elsewhere, as the options say: the PriorityClass and the ServiceAccount.
    priority = (
        '{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", '
        '"metadata": {"name": "business-critical"}, "value": 1000}'
    )
    ok(control_plane.kubectl("apply", "-f", "-", input=priority))
    outdir = chart_dir(
        tmp_path / "dist",
        namespace,
        lambda chart: FlaskBackend(
            chart,
            "flask-api",
            image=IMAGE,
            secrets=FAKE_SECRETS,
            env_from=(EnvFrom(config_map="platform-settings", optional=True),),
            init_containers=(ExtraContainer("warm", IMAGE, command=("true",)),),
            sidecars=(
                ExtraContainer(
                    "proxy",
                    PROXY,
                    args=("--port=5432",),
                    security_context={"runAsUser": 65532, "runAsGroup": 65532},
                ),
            ),
            priority_class_name="business-critical",
            service_account="api-identity",
        ),
    )
    ok(control_plane.kubectl("apply", "-f", str(outdir / "sidecars.k8s.yaml")))
    ok(control_plane.kubectl("create", "serviceaccount", "api-identity", "-n", namespace))

    created = eventually(lambda: pods(control_plane, namespace), "pods made by the controllers")

    pod = created[0]["spec"]
    proxy, warm = pod["initContainers"]
    assert (proxy["name"], proxy["restartPolicy"]) == ("proxy", "Always")
    assert warm["name"] == "warm"
    assert "restartPolicy" not in warm
    assert pod["priorityClassName"] == "business-critical"
    assert pod["priority"] == 1000
    assert pod["serviceAccountName"] == "api-identity"
    labels = get(control_plane, "namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_backend_without_cpu_limit_is_admitted(control_plane: ControlPlane, tmp_path: Path):
    namespace = "no-cpu-limit"
    outdir = chart_dir(
        tmp_path / "dist",
        namespace,
        lambda chart: FlaskBackend(
            chart,
            "flask-api",
            image=IMAGE,
            secrets=FAKE_SECRETS,
            resources=Resources(cpu_request_millicores=1500, cpu_limit_millicores=None),
        ),
    )

    ok(control_plane.kubectl("apply", "-f", str(outdir)))

    created = eventually(lambda: pods(control_plane, namespace), "pods made by the controllers")
    (app,) = created[0]["spec"]["containers"]
    assert "cpu" not in app["resources"]["limits"]
    assert app["resources"]["requests"]["cpu"] == "1500m"
    (cpu,) = (e for e in app["env"] if e["name"] == "CPU_REQUEST_MILLICORES")
    assert cpu["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"


def test_the_dev_profile_applies_in_one_pass(control_plane: ControlPlane, tmp_path: Path):
    dist = synth(tmp_path / "dist", PROFILE="dev", NAMESPACE="dev", INGRESS_HOST="api.localtest.me")

    ok(control_plane.kubectl("apply", "-f", str(dist)))

    eventually(lambda: len(pods(control_plane, "dev")) == 1, "one pod")
    deployment = get(control_plane, "deployment", "flask-api", "-n", "dev")
    assert deployment["spec"]["replicas"] == 1
    assert get(control_plane, "ingress", "flask-api", "-n", "dev")["spec"]["rules"][0]["host"] == (
        "api.localtest.me"
    )
