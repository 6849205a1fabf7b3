"""max_request_bytes, run for real: the pod the manifest describes refuses a larger body (Flask,
413) and a longer request line (gunicorn, 414), and serves what fits (issue 13)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flask_backend import FlaskBackend
from tests.pod import ON_THE_MANIFEST_PORTS, start_pod
from tests.support import FAKE_SECRETS, synth
from tests.test_pod_sandbox import sandbox  # noqa: F401 - the fixture: skip without bubblewrap

pytestmark = [pytest.mark.usefixtures("sandbox"), ON_THE_MANIFEST_PORTS]
LIMIT = 2048


def status_of(url: str, data: bytes | None = None) -> int:
    """The status of a GET, or of a JSON POST of data, on the pod's loopback port."""
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_pod_refuses_what_exceeds_max_request_bytes(tmp_path: Path) -> None:
    documents = synth(
        lambda chart: FlaskBackend(
            chart,
            "api",
            image="registry.example.com/team/api:1.4.2",
            secrets=FAKE_SECRETS,
            max_request_bytes=LIMIT,
        )
    )
    pod = start_pod(documents, tmp_path)
    try:
        pod.wait_until_started("/startupz")
        body = json.dumps({"name": "x" * LIMIT}).encode()

        assert status_of(pod.url("/api/v1/items"), body) == 413, pod.logs()
        assert status_of(pod.url("/api/v1/info?" + "q" * LIMIT)) == 414, pod.logs()
        assert status_of(pod.url("/api/v1/info")) == 200
    finally:
        pod.kill()
