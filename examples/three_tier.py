#!/usr/bin/env python3
"""A three-tier app as a set of charts: an nginx frontend that calls the Flask backend, which
reaches a PostgreSQL database in its own namespace.

    .venv/bin/python examples/three_tier.py  # writes examples/dist/three-tier/

What connects the tiers:
- the frontend gets the backend's in-cluster URL (`backend.service_url`) in its environment;
- the backend admits traffic from the `frontend` namespace only, and may send traffic only to
  DNS and to the `database` namespace on 5432 (an EgressRule); the frontend admits traffic from
  the edge (`ingress-nginx`) only, and may send traffic only to DNS and the backend's pods;
- the backend's credentials live in a Secret managed outside this repository (`existing_secret`,
  e.g. a Sealed Secret or an External Secret), so the output holds no secret value;
- the backend migrates the database's schema in a Job once per release (`Migrations`), and its
  pods wait in an init container until the schema is at the head their image expects.
The database tier itself (namespace `database`) is managed elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from flask_backend import (
    EgressRule,
    FlaskBackend,
    Migrations,
    NetworkPolicyOptions,
    OutputError,
    RestrictedNamespace,
    write_app,
)

FRONTEND_IMAGE = "nginxinc/nginx-unprivileged:1.27.3-alpine"  # listens on 8080, any UID
FRONTEND_PORT = 8080
# The image's own user is 101, but it runs as any UID (built for OpenShift's random ones) when
# it can write /tmp, its pid and temp folder. Above 10000, like the backend's 10001: no UID a
# node's own users have (kube-score: container-security-context-user-group-id).
NGINX_UID = 10101
DATABASE_PORT = 5432
# Where the edge proxies that reach the frontend run (ingress-nginx's install manifests; use your
# Ingress controller's or Gateway's namespace).
EDGE_NAMESPACE = "ingress-nginx"


class BackendChart(cdk8s.Chart):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id, namespace="backend", disable_resource_name_hashes=True)
        RestrictedNamespace(self)
        self.api = FlaskBackend(
            self,
            "api",
            image="registry.example.com/shop/api:1.4.2",
            config={"LOG_LEVEL": "info"},
            # Created outside this repository, e.g.
            # kubectl -n backend create secret generic api-credentials --from-literal=...
            existing_secret="api-credentials",  # noqa: S106 - a name, not a value
            network_policy=NetworkPolicyOptions(
                ingress_namespaces=("frontend",),
                egress=(EgressRule(namespace="database", ports=(DATABASE_PORT,)),),
            ),
            # The image's own migration command (python -m backend_api.migrate upgrade) in a Job
            # named after what it runs; pods wait for it (python -m backend_api.migrate wait).
            migrations=Migrations(),
            part_of="shop",
        )


class FrontendChart(cdk8s.Chart):
    """The nginx frontend, hardened as FlaskBackend hardens the backend: Pod Security
    "restricted", requests and limits (ephemeral storage too), two replicas spread across nodes
    and zones under a PodDisruptionBudget, rolled one new pod at a time with a preStop pause,
    distinct liveness and readiness probes, and a NetworkPolicy that admits only the edge and
    lets the pods reach only DNS and the backend."""

    def __init__(self, scope: Construct, id: str, *, backend: FlaskBackend) -> None:
        super().__init__(scope, id, namespace="frontend", disable_resource_name_hashes=True)
        RestrictedNamespace(self)
        # nginx writes its pid and cache here: bounded, as the root filesystem is read-only.
        tmp = kplus.Volume.from_empty_dir(self, "tmp", "tmp", size_limit=cdk8s.Size.mebibytes(64))
        web = kplus.Deployment(
            self,
            "web",
            metadata=cdk8s.ApiObjectMetadata(name="web"),
            replicas=2,
            # A new pod is ready before an old one goes.
            strategy=kplus.DeploymentStrategy.rolling_update(
                max_surge=kplus.PercentOrAbsolute.absolute(1),
                max_unavailable=kplus.PercentOrAbsolute.absolute(0),
            ),
            security_context=kplus.PodSecurityContextProps(user=NGINX_UID, group=NGINX_UID),
            containers=[
                kplus.ContainerProps(
                    name="nginx",
                    image=FRONTEND_IMAGE,
                    image_pull_policy=kplus.ImagePullPolicy.ALWAYS,
                    ports=[kplus.ContainerPort(number=FRONTEND_PORT, name="http")],
                    # Where the frontend (or its nginx proxy_pass) sends API calls.
                    env_variables={"BACKEND_URL": kplus.EnvValue.from_value(backend.service_url)},
                    volume_mounts=[kplus.VolumeMount(path="/tmp", volume=tmp)],  # noqa: S108
                    security_context=kplus.ContainerSecurityContextProps(
                        user=NGINX_UID, group=NGINX_UID
                    ),
                    resources=kplus.ContainerResources(
                        cpu=kplus.CpuResources(
                            request=kplus.Cpu.millis(50), limit=kplus.Cpu.millis(500)
                        ),
                        memory=kplus.MemoryResources(
                            request=cdk8s.Size.mebibytes(64), limit=cdk8s.Size.mebibytes(64)
                        ),
                        # Container logs on the node's disk: bounded, else the pod is evicted.
                        ephemeral_storage=kplus.EphemeralStorageResources(
                            request=cdk8s.Size.gibibytes(1), limit=cdk8s.Size.gibibytes(1)
                        ),
                    ),
                    # Ready: serving pages. Alive: accepting connections, which a busy nginx
                    # still does, so a slow page never restarts it.
                    readiness=kplus.Probe.from_http_get("/", port=FRONTEND_PORT),
                    liveness=kplus.Probe.from_tcp_socket(port=FRONTEND_PORT),
                    # Endpoints drain before nginx stops accepting (as the backend's preStop).
                    lifecycle=kplus.ContainerLifecycle(
                        pre_stop=kplus.Handler.from_command(["sleep", "5"])
                    ),
                )
            ],
        )
        selector = {"matchLabels": dict(web.match_labels)}
        # Pod Security "restricted" also wants these two, and spreading replicas across nodes
        # and zones keeps one node or zone from taking the frontend down; cdk8s-plus-27 has no
        # prop for them.
        container = "/spec/template/spec/containers/0"
        cdk8s.ApiObject.of(web).add_json_patch(
            cdk8s.JsonPatch.add(f"{container}/securityContext/capabilities", {"drop": ["ALL"]}),
            cdk8s.JsonPatch.add(
                "/spec/template/spec/securityContext/seccompProfile", {"type": "RuntimeDefault"}
            ),
            cdk8s.JsonPatch.add(
                "/spec/template/spec/topologySpreadConstraints",
                [
                    {
                        "labelSelector": selector,
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": "ScheduleAnyway",
                    }
                    for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
                ],
            ),
            cdk8s.JsonPatch.add(
                "/spec/template/spec/affinity",
                {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "podAffinityTerm": {
                                    "labelSelector": selector,
                                    "topologyKey": "kubernetes.io/hostname",
                                },
                                "weight": 100,
                            }
                        ]
                    }
                },
            ),
        )
        web.expose_via_service(
            name="web", ports=[kplus.ServicePort(port=80, target_port=FRONTEND_PORT)]
        )
        # Node drains take one pod at a time; an unready pod (say, the backend is down) may
        # still be evicted, or every drain would wait for the backend.
        manifest(
            self,
            "web-budget",
            "policy/v1",
            "PodDisruptionBudget",
            "web",
            {
                "maxUnavailable": 1,
                "selector": selector,
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        )
        dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        manifest(
            self,
            "web-network-policy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "web",
            {
                "podSelector": selector,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [namespace_peer(EDGE_NAMESPACE)],
                        "ports": [{"protocol": "TCP", "port": FRONTEND_PORT}],
                    }
                ],
                "egress": [
                    {"to": [dns], "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]},
                    {
                        "to": [
                            {
                                **namespace_peer(backend.namespace or "backend"),
                                "podSelector": {"matchLabels": dict(backend.selector_labels)},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": backend.port}],
                    },
                ],
            },
        )


def manifest(
    scope: Construct, id: str, api_version: str, kind: str, name: str, spec: dict
) -> cdk8s.ApiObject:
    """An object cdk8s-plus-27 has no class for, as a plain cdk8s ApiObject."""
    api_object = cdk8s.ApiObject(
        scope, id, api_version=api_version, kind=kind, metadata=cdk8s.ApiObjectMetadata(name=name)
    )
    api_object.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
    return api_object


def namespace_peer(namespace: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def build(app: cdk8s.App) -> tuple[FrontendChart, BackendChart]:
    backend = BackendChart(app, "backend")
    frontend = FrontendChart(app, "frontend", backend=backend.api)
    frontend.add_dependency(backend)  # the frontend needs the backend's URL
    return frontend, backend


def make_app(outdir: str) -> cdk8s.App:
    app = cdk8s.App(outdir=outdir)
    build(app)
    return app


if __name__ == "__main__":
    # $CDK8S_OUTDIR, else beside the examples: main.py's dist/ is replaced by each `make synth`.
    here = Path(__file__).resolve().parent
    outdir = Path(os.environ.get("CDK8S_OUTDIR") or here / "dist" / "three-tier")
    try:
        write_app(make_app, outdir)
    except OutputError as error:  # a refused or unwritable outdir: one line, no traceback
        sys.exit(f"{Path(__file__).name}: error: {error}")
    print(f"wrote {outdir}")
