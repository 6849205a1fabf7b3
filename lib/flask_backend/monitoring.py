"""Prometheus metrics: the Metrics options, the variables that switch them on in the app, and
the Prometheus Operator's ServiceMonitor. (The metrics port on the container, the Service and
the NetworkPolicy is written by those modules, from `backend.metrics`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_backend import shared
from flask_backend import validation as v
from flask_backend.contract import (
    DEFAULT_METRICS_PORT,
    METRICS_DIR,
    METRICS_PATH,
    METRICS_PORT_NAME,
)

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend


@dataclass(frozen=True)
class Metrics:
    """Prometheus metrics on a port of their own, true under gunicorn (sums over every worker,
    never reset by a worker restart; docs/metrics.md).

    The container gets a ``metrics`` port and a memory-backed emptyDir for the workers' metric
    files; the Service gets a ``metrics`` port; the NetworkPolicy admits ``scrape_namespaces``
    to that port only. Off by default, because the image must serve them (``METRICS_PORT`` and
    ``PROMETHEUS_MULTIPROC_DIR`` tell it where); for an image that does, as this repository's
    app, a scrape costs the API nothing (the master serves it) and the request path under 5%
    (BENCHMARKS.md), and a pod's workers restarting inside it is invisible to Kubernetes
    without it.
    """

    port: int = DEFAULT_METRICS_PORT
    """Port /metrics is served on (passed to the app as METRICS_PORT). Default: 9102."""
    scrape_namespaces: tuple[str, ...] = ("monitoring",)
    """Namespaces whose pods may reach the metrics port (with a NetworkPolicy); empty admits
    none. Default: - ("monitoring",), where kube-prometheus-stack usually runs."""
    service_monitor: bool = False
    """Add a ServiceMonitor (monitoring.coreos.com/v1) for the Prometheus Operator; its CRD
    must be installed first. Default: False (plain ``kubectl apply`` works on any cluster)."""
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on the ServiceMonitor, to match a Prometheus's ``serviceMonitorSelector``
    (kube-prometheus-stack: ``{"release": "<its release name>"}``). Default: - none."""
    scrape_interval_seconds: int = 30
    """How often Prometheus scrapes (the ServiceMonitor's interval). Default: 30."""
    dir_size_mib: int = 16
    """Size limit of the emptyDir holding the metric files (a few KiB per worker started since
    the pod did; counted in the memory limit). Default: 16."""

    def _validate(self) -> None:
        v.int_in_range("metrics.port", self.port, 1, 65535)
        v.require_type("metrics.scrape_namespaces", self.scrape_namespaces, (tuple, list))
        for i, namespace in enumerate(self.scrape_namespaces):
            v.dns_label(f"metrics.scrape_namespaces[{i}]", namespace)
        v.require_type("metrics.service_monitor", self.service_monitor, bool)
        for key, value in v.annotation_map(
            "metrics.service_monitor_labels", self.service_monitor_labels
        ).items():
            v.label_value(f"metrics.service_monitor_labels[{key!r}]", value)
        v.int_in_range("metrics.scrape_interval_seconds", self.scrape_interval_seconds, 1, 3600)
        v.int_in_range("metrics.dir_size_mib", self.dir_size_mib, 1, 1024)


def resolve_metrics(metrics: Metrics | None, port: int, service_port: int) -> Metrics | None:
    if metrics is not None and metrics.port == port:
        raise ValueError(
            f"metrics.port must differ from port ({port}): scrapers are admitted to the "
            f"metrics port only, got {metrics.port}"
        )
    if metrics is not None and metrics.port == service_port:
        raise ValueError(
            f"metrics.port must differ from service_port ({service_port}): the Service would "
            f"have two ports {service_port}, which the API server refuses; got {metrics.port}"
        )
    return metrics


def metrics_env(metrics: Metrics | None) -> dict[str, str]:
    """What tells the app to serve metrics, and where the workers write them."""
    if metrics is None:
        return {}
    return {"METRICS_PORT": str(metrics.port), "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR}


def service_monitor(backend: FlaskBackend) -> dict[str, Any] | None:
    """The Prometheus Operator's ServiceMonitor; the tests validate it against the CRD's
    schema and a real API server."""
    metrics = backend.metrics
    if metrics is None or not metrics.service_monitor:
        return None
    spec = {
        "selector": {"matchLabels": backend.selector_labels},
        "endpoints": [
            {
                "port": METRICS_PORT_NAME,
                "path": METRICS_PATH,
                "interval": f"{metrics.scrape_interval_seconds}s",
                # A scrape answers in milliseconds (BENCHMARKS.md); more means a sick pod.
                "scrapeTimeout": f"{min(10, metrics.scrape_interval_seconds)}s",
            }
        ],
    }
    labels = {**backend.labels, **metrics.service_monitor_labels}
    return shared.document(
        backend.identity,
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        backend.name,
        labels=labels,
        spec=spec,
    )
