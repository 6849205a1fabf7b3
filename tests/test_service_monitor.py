"""The ServiceMonitor is a raw ApiObject (the library ships without generated bindings), so its
shape is checked here against the prometheus-operator CRD's own schema, from the Go module
pinned in tools/crds (`make control-plane` copies it); tests/cluster applies it for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from flask_backend import FlaskBackend, Metrics
from tests.cluster.conftest import require_binaries
from tests.support import FAKE_SECRETS, by_kind, container, synth

CRD_FILE = "monitoring.coreos.com_servicemonitors.yaml"


def crd_path() -> Path:
    return require_binaries().parent / "crds" / CRD_FILE


def served_schema() -> dict[str, Any]:
    crd = yaml.safe_load(crd_path().read_text())
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def backend_documents(**metrics: Any) -> list[dict[str, Any]]:
    return synth(
        lambda chart: FlaskBackend(
            chart, "api", image="repo/api:1.0", secrets=FAKE_SECRETS, metrics=Metrics(**metrics)
        )
    )


def test_the_service_monitor_matches_the_crd_schema():
    monitor = by_kind(
        backend_documents(service_monitor=True, service_monitor_labels={"release": "kps"}),
        "ServiceMonitor",
    )

    jsonschema.validate(monitor, served_schema())
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_the_schema_check_catches_a_wrong_field():
    monitor = by_kind(backend_documents(service_monitor=True), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"

    with pytest.raises(jsonschema.ValidationError, match="interval"):
        jsonschema.validate(monitor, served_schema())


def test_the_service_monitor_scrapes_the_container_metrics_port_through_the_service():
    documents = backend_documents(service_monitor=True)
    monitor, service = by_kind(documents, "ServiceMonitor"), by_kind(documents, "Service")
    (endpoint,) = monitor["spec"]["endpoints"]
    (service_port,) = (p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    (container_port,) = (
        p for p in container(documents)["ports"] if p["name"] == service_port["targetPort"]
    )

    assert container_port["containerPort"] == Metrics().port
    assert endpoint["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_no_service_monitor_unless_asked():
    assert not [d for d in backend_documents() if d["kind"] == "ServiceMonitor"]
