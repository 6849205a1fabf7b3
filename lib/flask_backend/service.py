"""The ClusterIP Service in front of the pods, and the ServiceAccount they run as."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_backend import shared
from flask_backend import validation as v
from flask_backend.contract import METRICS_PORT_NAME, PORT_NAME

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend


def service(backend: FlaskBackend) -> dict[str, Any]:
    # targetPort by name, so a port change in the pod never needs a Service change.
    ports = [{"name": PORT_NAME, "port": backend.service_port, "targetPort": PORT_NAME}]
    if backend.metrics is not None:
        # A ServiceMonitor finds pods through a Service port, by name.
        ports.append(
            {
                "name": METRICS_PORT_NAME,
                "port": backend.metrics.port,
                "targetPort": METRICS_PORT_NAME,
            }
        )
    spec = {"ports": ports, "selector": backend.selector_labels, "type": "ClusterIP"}
    return shared.document(backend.identity, "v1", "Service", backend.name, spec=spec)


def existing_service_account(name: str | None) -> str | None:
    if name is not None:
        v.dns_subdomain("service_account", name)
        if name == "default":
            raise ValueError(
                "service_account must not be 'default', which every pod of the namespace "
                "shares (checkov CKV_K8S_41); got 'default'"
            )
    return name


def service_account(backend: FlaskBackend) -> dict[str, Any] | None:
    """The pods' own ServiceAccount, without an API token; none when they run as one managed
    elsewhere."""
    if backend.existing_service_account:
        return None
    return shared.document(
        backend.identity, "v1", "ServiceAccount", backend.name, automountServiceAccountToken=False
    )
