"""The ServiceMonitor on a real API server with the prometheus-operator CRD installed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from flask_backend import FlaskBackend, Metrics
from tests.cluster.controlplane import ControlPlane
from tests.support import FAKE_SECRETS, synth

CRD_FILE = "monitoring.coreos.com_servicemonitors.yaml"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr + result.stdout, result.stderr
    return result.stdout


def test_the_service_monitor_is_accepted_by_the_api_server(control_plane: ControlPlane, tmp_path):
    control_plane.install_crds(CRD_FILE)
    namespace = "monitored"
    documents = synth(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image="repo/api:1.0",
            secrets=FAKE_SECRETS,
            metrics=Metrics(service_monitor=True, service_monitor_labels={"release": "kps"}),
        ),
        namespace=namespace,
    )
    manifest = Path(tmp_path, "backend.json")
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    ok(control_plane.kubectl("create", "namespace", namespace))

    ok(control_plane.kubectl("apply", "--server-side", "-f", str(manifest)))

    stored = json.loads(
        ok(control_plane.kubectl("get", "servicemonitor", "api", "-n", namespace, "-o", "json"))
    )
    (sent,) = (d for d in documents if d["kind"] == "ServiceMonitor")
    assert stored["spec"] == sent["spec"]
    # Applied again, nothing changes: the API server stored exactly what was sent.
    again = ok(control_plane.kubectl("apply", "--server-side", "-f", str(manifest)))
    assert "servicemonitor.monitoring.coreos.com/api serverside-applied" in again
