"""The NetworkPolicy of the app's pods: who may reach the http and metrics ports, and, when
asked, where the pods may connect (NetworkPolicyOptions, EgressRule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_backend import shared
from flask_backend import validation as v
from flask_backend.contract import METRICS_PORT_NAME, PORT_NAME

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend


@dataclass(frozen=True)
class EgressRule:
    """Allow traffic to pods in one namespace on some TCP ports, e.g. the database tier."""

    namespace: str
    """Namespace of the destination (matched by its kubernetes.io/metadata.name label)."""
    ports: tuple[int, ...]
    """Destination TCP ports, e.g. (5432,)."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Narrow to pods with these labels. Default: - every pod in the namespace."""


@dataclass(frozen=True)
class NetworkPolicyOptions:
    """Which traffic the backend's NetworkPolicy admits. Defaults never break the default setup."""

    ingress_namespaces: tuple[str, ...] = ()
    """Namespaces whose pods may reach the http port (and only that port), besides the proxies
    of ``ingress`` and ``http_route``. Default: - the pods of the backend's own namespace and
    those proxies (any source, with an Ingress whose ``controller_namespace`` is unknown)."""
    egress: tuple[EgressRule, ...] | None = None
    """When set, egress is denied except DNS and these rules. Default: - egress unrestricted."""

    def _validate(self) -> None:
        # A bare string is iterable too: ingress_namespaces="web" would admit "w", "e" and "b".
        v.require_type("network_policy.ingress_namespaces", self.ingress_namespaces, (tuple, list))
        for i, namespace in enumerate(self.ingress_namespaces):
            v.dns_label(f"network_policy.ingress_namespaces[{i}]", namespace)
        if self.egress is not None:
            v.require_type("network_policy.egress", self.egress, (tuple, list))
        for i, rule in enumerate(self.egress or ()):
            v.require_type(f"network_policy.egress[{i}]", rule, EgressRule)
            v.dns_label(f"network_policy.egress[{i}].namespace", rule.namespace)
            v.require_type(f"network_policy.egress[{i}].ports", rule.ports, (tuple, list))
            if not rule.ports:
                raise ValueError(f"network_policy.egress[{i}].ports must not be empty, got ()")
            for port in rule.ports:
                v.int_in_range(f"network_policy.egress[{i}].ports", port, 1, 65535)
            # Label keys follow the annotation-key rules (optional DNS prefix, qualified name).
            for key, value in v.annotation_map(
                f"network_policy.egress[{i}].pod_labels", rule.pod_labels
            ).items():
                v.label_value(f"network_policy.egress[{i}].pod_labels[{key!r}]", value)


# A peer of every pod in the policy's own namespace.
SAME_NAMESPACE: dict[str, Any] = {"podSelector": {}}


def namespace_peer(namespace: str, pod_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def network_policy(backend: FlaskBackend) -> dict[str, Any] | None:
    options = backend.network_policy_options
    if options is None:
        return None
    # Routed traffic arrives from the ingress controller's or Gateway's proxies. Without a
    # list, the pods of the backend's own namespace: never every pod of the cluster, which
    # could then hold the app's connections (kubelet probes and port-forward come from the
    # node and the pod itself, which a NetworkPolicy does not stop).
    ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": PORT_NAME}]}
    routed = backend.ingress_options
    if options.ingress_namespaces or routed is None or routed.router_namespace is not None:
        own = [] if options.ingress_namespaces else [SAME_NAMESPACE]
        admitted = dict.fromkeys([*options.ingress_namespaces, *backend.router_namespaces])
        ingress["from"] = [*own, *(namespace_peer(ns) for ns in admitted)]
    # else an Ingress whose controller may run anywhere: any source may reach the port.
    rules = [ingress]
    metrics = backend.metrics
    if metrics is not None and metrics.scrape_namespaces:
        # Scrapers reach the metrics port only, never the API.
        rules.append(
            {
                "from": [namespace_peer(ns) for ns in metrics.scrape_namespaces],
                "ports": [{"protocol": "TCP", "port": METRICS_PORT_NAME}],
            }
        )
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": backend.selector_labels},
        "policyTypes": ["Ingress"],
        "ingress": rules,
    }
    if options.egress is not None:
        spec["policyTypes"].append("Egress")
        dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        spec["egress"] = [
            {"to": [dns], "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]},
            *(
                {
                    "to": [namespace_peer(rule.namespace, rule.pod_labels)],
                    "ports": [{"protocol": "TCP", "port": p} for p in rule.ports],
                }
                for rule in options.egress
            ),
        ]
    return shared.document(
        backend.identity, "networking.k8s.io/v1", "NetworkPolicy", backend.name, spec=spec
    )
