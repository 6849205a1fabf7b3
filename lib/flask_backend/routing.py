"""Routing from outside the cluster to the Service: a Gateway API HTTPRoute (HttpRoute,
GatewayRef), the route the ecosystem moves to, or a controller-neutral Ingress. What is
particular to one controller is kept here, and written only when asked for: ingress-nginx's
annotation and namespace only with ``Ingress(class_name="nginx")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_backend import shared
from flask_backend import validation as v
from flask_backend.contract import PORT_NAME

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend

# ingress-nginx: its IngressClass name in its install manifests, the namespace they run it in,
# and its body-size annotation (the controller was retired upstream in March 2026).
NGINX_CLASS, NGINX_NAMESPACE = "nginx", "ingress-nginx"
BODY_SIZE_ANNOTATION = "nginx.ingress.kubernetes.io/proxy-body-size"


@dataclass(frozen=True)
class Ingress:
    """An Ingress (networking.k8s.io/v1) routing ``host`` and ``path`` to the Service's http port.

    Controller-neutral: nothing controller-specific is written unless ``class_name`` is
    "nginx" (ingress-nginx), which also gets the body-size annotation from
    ``max_request_bytes``, so the edge refuses what the app would refuse anyway.
    """

    host: str
    """Host name clients use, e.g. "api.example.com" ("*.example.com" for a wildcard)."""
    path: str = "/"
    """Path prefix routed to the backend (pathType Prefix). Default: "/"."""
    tls_secret: str | None = None
    """Name of a kubernetes.io/tls Secret (e.g. made by cert-manager) for ``host``.
    Default: - plain HTTP."""
    class_name: str | None = None
    """IngressClass to use; "nginx" adds ingress-nginx's body-size annotation.
    Default: - the cluster's default IngressClass, and no controller-specific annotation."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra annotations for the controller (not ingress-nginx's body size: see
    ``max_request_bytes``). Default: - none."""
    controller_namespace: str | None = None
    """Namespace of the ingress controller's pods, which the NetworkPolicy then admits (when it
    admits only some namespaces, it must be known). Default: - "ingress-nginx" with class_name
    "nginx" (its install manifests), else none."""

    def _validate(self) -> None:
        v.host_name("ingress.host", self.host)
        v.route_path("ingress.path", self.path)
        if self.tls_secret is not None:
            v.dns_subdomain("ingress.tls_secret", self.tls_secret)
        if self.class_name is not None:
            v.dns_subdomain("ingress.class_name", self.class_name)
        annotations = v.annotation_map("ingress.annotations", self.annotations)
        v.yaml_text("ingress.annotations", annotations)
        if BODY_SIZE_ANNOTATION in annotations:
            raise ValueError(
                f"ingress.annotations must not set {BODY_SIZE_ANNOTATION!r}: the backend sets it "
                "from max_request_bytes, which also reaches gunicorn and Flask"
            )
        if self.controller_namespace is not None:
            v.dns_label("ingress.controller_namespace", self.controller_namespace)

    @property
    def router_namespace(self) -> str | None:
        """Where the controller's proxies run, when known."""
        if self.controller_namespace is None and self.class_name == NGINX_CLASS:
            return NGINX_NAMESPACE
        return self.controller_namespace


@dataclass(frozen=True)
class GatewayRef:
    """A Gateway (Gateway API) an HTTPRoute attaches to."""

    name: str
    """Name of the Gateway."""
    namespace: str | None = None
    """Namespace of the Gateway. Default: - the route's own namespace."""
    section_name: str | None = None
    """One listener of the Gateway, by name. Default: - every listener that allows the route."""


@dataclass(frozen=True)
class HttpRoute:
    """An HTTPRoute (gateway.networking.k8s.io/v1) sending ``hostnames`` and ``path`` to the
    Service. The Gateway API has no named ports: the route names the Service's port number."""

    parent_refs: tuple[GatewayRef, ...]
    """The Gateways to attach to (at least one, at most 32)."""
    hostnames: tuple[str, ...] = ()
    """Host names to match. Default: - the hosts of the Gateway's listeners."""
    path: str = "/"
    """Path prefix routed to the backend (PathPrefix). Default: "/"."""
    controller_namespace: str | None = None
    """Namespace of the Gateway's proxy pods, which the NetworkPolicy then admits to the http
    port. Default: - the namespace of each parent Gateway, where Istio, NGINX Gateway Fabric
    and Envoy Gateway's Gateway-namespace mode run them."""

    def _validate(self, route_namespace: str | None) -> tuple[str, ...]:
        """Check the fields; return the namespaces whose proxies must reach the pods."""
        v.require_type("http_route.parent_refs", self.parent_refs, (tuple, list))
        if not 1 <= len(self.parent_refs) <= 32:
            raise ValueError(
                f"http_route.parent_refs must hold 1 to 32 GatewayRefs, got {len(self.parent_refs)}"
            )
        namespaces = []
        for i, ref in enumerate(self.parent_refs):
            where = f"http_route.parent_refs[{i}]"
            v.require_type(where, ref, GatewayRef)
            v.dns_subdomain(f"{where}.name", ref.name)
            if ref.namespace is not None:
                v.dns_label(f"{where}.namespace", ref.namespace)
            if ref.section_name is not None:
                v.dns_subdomain(f"{where}.section_name", ref.section_name)
            namespaces.append(ref.namespace or route_namespace)
        v.require_type("http_route.hostnames", self.hostnames, (tuple, list))
        if len(self.hostnames) > 16:
            raise ValueError(
                f"http_route.hostnames must hold at most 16, got {len(self.hostnames)}"
            )
        for i, host in enumerate(self.hostnames):
            v.host_name(f"http_route.hostnames[{i}]", host)
        v.route_path("http_route.path", self.path)
        if self.controller_namespace is not None:
            return (v.dns_label("http_route.controller_namespace", self.controller_namespace),)
        return tuple(dict.fromkeys(ns for ns in namespaces if ns))


def router_namespaces(
    ingress: Ingress | None,
    http_route: HttpRoute | None,
    namespace: str | None,
    *,
    admits_some_namespaces: bool,
) -> tuple[str, ...]:
    """Validate the routes; return the namespaces whose proxies deliver routed traffic (the
    NetworkPolicy admits them, when it admits only some namespaces)."""
    if ingress is not None:
        v.require_type("ingress", ingress, Ingress)
        ingress._validate()
        if admits_some_namespaces and ingress.router_namespace is None:
            raise ValueError(
                "ingress.controller_namespace must name the namespace of the ingress "
                "controller's pods when network_policy.ingress_namespaces admits only some "
                f"namespaces (or class_name={NGINX_CLASS!r}: {NGINX_NAMESPACE!r}), got None"
            )
    route_namespaces: tuple[str, ...] = ()
    if http_route is not None:
        v.require_type("http_route", http_route, HttpRoute)
        route_namespaces = http_route._validate(namespace)
    ingress_namespace = ingress.router_namespace if ingress else None
    return tuple(
        dict.fromkeys([*([ingress_namespace] if ingress_namespace else []), *route_namespaces])
    )


def ingress(backend: FlaskBackend) -> dict[str, Any] | None:
    options = backend.ingress_options
    if options is None:
        return None
    annotations = dict(options.annotations)
    if options.class_name == NGINX_CLASS:
        annotations[BODY_SIZE_ANNOTATION] = str(backend.max_request_bytes)
    service = {"service": {"name": backend.name, "port": {"name": PORT_NAME}}}
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": options.host,
                "http": {
                    "paths": [{"path": options.path, "pathType": "Prefix", "backend": service}]
                },
            }
        ]
    }
    if options.class_name is not None:
        spec["ingressClassName"] = options.class_name
    if options.tls_secret is not None:
        spec["tls"] = [{"hosts": [options.host], "secretName": options.tls_secret}]
    return shared.document(
        backend.identity,
        "networking.k8s.io/v1",
        "Ingress",
        backend.name,
        annotations=annotations,
        spec=spec,
    )


def http_route(backend: FlaskBackend) -> dict[str, Any] | None:
    options = backend.http_route_options
    if options is None:
        return None
    parents = []
    for ref in options.parent_refs:
        parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
        if ref.namespace is not None:
            parent["namespace"] = ref.namespace
        if ref.section_name is not None:
            parent["sectionName"] = ref.section_name
        parents.append(parent)
    spec: dict[str, Any] = {
        "parentRefs": parents,
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": options.path}}],
                # By number: the Gateway API has no named ports.
                "backendRefs": [{"name": backend.name, "port": backend.service_port}],
            }
        ],
    }
    if options.hostnames:
        spec["hostnames"] = list(options.hostnames)
    return shared.document(
        backend.identity, "gateway.networking.k8s.io/v1", "HTTPRoute", backend.name, spec=spec
    )
