"""Routing (lib/flask_backend/routing.py): the HTTPRoute and the Ingress, the namespaces their
proxies are admitted from, and the body-size limit at the edge. One behaviour per test; bad input
gets one line naming the field (tests.test_construct_errors.rejected).
"""

from __future__ import annotations

import pytest

from flask_backend import GatewayRef, HttpRoute, Ingress, NetworkPolicyOptions
from tests.support import by_kind
from tests.test_construct_errors import rejected
from tests.test_platform import backend, env_of

ROUTE = HttpRoute(parent_refs=(GatewayRef("public", namespace="gateways"),))


def admitted_namespaces(documents: list[dict]) -> list[str]:
    """The namespaces admitted to the http port (the metrics port has a rule of its own)."""
    (rule,) = (
        rule
        for rule in by_kind(documents, "NetworkPolicy")["spec"]["ingress"]
        if {"protocol": "TCP", "port": "http"} in rule["ports"]
    )
    return [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule.get("from", [])
    ]


# -- routing -------------------------------------------------------------------------------------


def test_ingress_routes_host_and_path_to_the_services_named_port() -> None:
    documents = backend(ingress=Ingress(host="api.example.com", path="/api", tls_secret="api-tls"))

    spec = by_kind(documents, "Ingress")["spec"]
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]
    (port,) = (p for p in by_kind(documents, "Service")["spec"]["ports"] if p["name"] == "http")
    assert rule["host"] == "api.example.com"
    assert (path["path"], path["pathType"]) == ("/api", "Prefix")
    assert path["backend"]["service"] == {"name": "api", "port": {"name": port["name"]}}
    assert spec["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]
    assert "ingressClassName" not in spec  # the cluster's default IngressClass


def test_http_route_sends_its_path_to_the_service_port() -> None:
    route = HttpRoute(
        parent_refs=(GatewayRef("public", namespace="gateways", section_name="https"),),
        hostnames=("api.example.com",),
        path="/v1",
    )

    documents = backend(http_route=route)

    spec = by_kind(documents, "HTTPRoute")["spec"]
    (port,) = (p for p in by_kind(documents, "Service")["spec"]["ports"] if p["name"] == "http")
    assert spec["parentRefs"][0]["sectionName"] == "https"
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rule["backendRefs"] == [{"name": "api", "port": port["port"]}]


def test_max_request_bytes_reaches_the_app_and_the_ingress_controller() -> None:
    documents = backend(
        max_request_bytes=5 * 1024 * 1024,
        ingress=Ingress(host="api.example.com", class_name="nginx"),
    )

    annotations = by_kind(documents, "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == str(5 * 1024 * 1024)
    assert env_of(documents)["MAX_REQUEST_BYTES"] == str(5 * 1024 * 1024)


def test_max_request_bytes_defaults_to_nginx_default_of_1_mib() -> None:
    assert env_of(backend())["MAX_REQUEST_BYTES"] == "1048576"


def test_routing_admits_the_controller_namespaces_when_the_policy_lists_namespaces() -> None:
    documents = backend(
        network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)),
        ingress=Ingress(host="api.example.com", class_name="nginx"),
        http_route=ROUTE,
    )

    assert admitted_namespaces(documents) == ["frontend", "ingress-nginx", "gateways"]


def test_an_ingress_is_controller_neutral_unless_it_asks_for_nginx() -> None:
    # Given an Ingress without a class (the cluster's default controller, whichever it is)
    documents = backend(ingress=Ingress(host="api.example.com"), max_request_bytes=2048)

    # Then it carries no controller's annotation; the app still refuses larger requests
    assert "annotations" not in by_kind(documents, "Ingress")["metadata"]
    assert env_of(documents)["MAX_REQUEST_BYTES"] == "2048"


def test_a_neutral_ingress_behind_a_policy_that_lists_namespaces_must_name_its_controller() -> None:
    message = rejected(
        ValueError,
        ingress=Ingress(host="api.example.com"),
        network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)),
    )

    assert message == (
        "ingress.controller_namespace must name the namespace of the ingress controller's pods "
        "when network_policy.ingress_namespaces admits only some namespaces (or "
        "class_name='nginx': 'ingress-nginx'), got None"
    )


def test_route_to_a_gateway_in_the_routes_namespace_admits_that_namespace() -> None:
    route = HttpRoute(parent_refs=(GatewayRef("local"),), controller_namespace=None)
    documents = backend(
        network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)), http_route=route
    )

    assert admitted_namespaces(documents) == ["frontend", "backend"]


def test_controller_namespace_is_a_parameter() -> None:
    documents = backend(
        network_policy=NetworkPolicyOptions(ingress_namespaces=("frontend",)),
        ingress=Ingress(host="api.example.com", controller_namespace="traefik"),
        http_route=HttpRoute(
            parent_refs=(GatewayRef("eg"),), controller_namespace="envoy-gateway-system"
        ),
    )

    assert admitted_namespaces(documents) == ["frontend", "traefik", "envoy-gateway-system"]


def test_routing_adds_the_controller_to_the_default_namespace() -> None:
    # No ingress_namespaces: the backend's own namespace may reach the http port, and the
    # controller's proxies too.
    documents = backend(ingress=Ingress(host="api.example.com", controller_namespace="traefik"))

    assert by_kind(documents, "NetworkPolicy")["spec"]["ingress"][0]["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}},
    ]


def test_an_ingress_of_an_unknown_controller_opens_the_default_policy() -> None:
    # Its proxies may run in any namespace: without a list, any source may reach the http
    # port (with one, the synth stops and asks for controller_namespace).
    documents = backend(ingress=Ingress(host="api.example.com"))

    assert "from" not in by_kind(documents, "NetworkPolicy")["spec"]["ingress"][0]


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"ingress": Ingress(host="api.example.com", path="api")},
            "ingress.path must be an absolute path like '/api' (letters, digits and -._~/, no "
            "'//', '.' or '..' segments, at most 1024 characters), got 'api'",
        ),
        (
            {"ingress": Ingress(host="api.example.com", path="/a/../b")},
            "ingress.path must be an absolute path like '/api'",
        ),
        (
            {"ingress": Ingress(host="API.example.com")},
            "ingress.host must be a DNS name like 'api.example.com' or '*.example.com' "
            "(lowercase letters, digits, '-' and '.', not an IP address), got 'API.example.com'",
        ),
        ({"ingress": Ingress(host="10.0.0.1")}, "ingress.host must be a DNS name"),
        (
            {"ingress": Ingress(host="api.example.com", tls_secret="API_TLS")},
            "ingress.tls_secret must be a DNS subdomain of at most 253 characters",
        ),
        (
            {
                "ingress": Ingress(
                    host="api.example.com",
                    annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "0"},
                )
            },
            "ingress.annotations must not set 'nginx.ingress.kubernetes.io/proxy-body-size': "
            "the backend sets it from max_request_bytes",
        ),
        (
            {"http_route": HttpRoute(parent_refs=())},
            "http_route.parent_refs must hold 1 to 32 GatewayRefs, got 0",
        ),
        (
            {"http_route": HttpRoute(parent_refs=(GatewayRef("gw"),), hostnames=("a b",))},
            "http_route.hostnames[0] must be a DNS name",
        ),
    ],
)
def test_bad_routing_input_is_one_line_naming_the_field(props: dict, message: str) -> None:
    assert rejected(ValueError, **props).startswith(message)
