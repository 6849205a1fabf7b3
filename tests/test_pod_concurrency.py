"""The worker count the docs promise, from the pod's CPU, with and without a CPU limit (issue 13).

serving.py promises ``workers = ceil(cpu / 1000)`` of the container's CPU limit, and of its CPU
request when it has no limit (Resources(cpu_limit_millicores=None)). Each case synthesizes a
backend, runs its pod in the sandbox (tests/pod.py: the env resolved from the manifest's
Downward API fields as the kubelet does) and counts gunicorn's worker processes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from backend_api.serving import concurrency
from flask_backend import FlaskBackend, Resources
from tests.pod import ON_THE_MANIFEST_PORTS, PodProcess, descendants, is_gunicorn, start_pod
from tests.support import FAKE_SECRETS, IMAGE, synth
from tests.test_pod_sandbox import sandbox  # noqa: F401 - the fixture: skip without bubblewrap

pytestmark = [pytest.mark.usefixtures("sandbox"), ON_THE_MANIFEST_PORTS]


def workers_of(pod: PodProcess, expected: int) -> int:
    """gunicorn's worker processes once they are all up (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        master = pod.gunicorn_master()
        workers = [pid for pid in descendants(master) if is_gunicorn(pid)]
        if len(workers) >= expected or time.monotonic() > deadline:
            return len(workers)
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("request_millicores", "limit_millicores", "sized_by"),
    [
        (250, 2000, 2000),  # the limit sizes the workers, not the smaller request
        (1500, None, 1500),  # no limit: the request does, never the node's CPU count
    ],
    ids=["cpu-limit", "no-cpu-limit"],
)
def test_the_pod_runs_one_worker_per_core_of_its_cpu(
    tmp_path: Path, request_millicores: int, limit_millicores: int | None, sized_by: int
) -> None:
    resources = Resources(
        cpu_request_millicores=request_millicores, cpu_limit_millicores=limit_millicores
    )
    documents = synth(
        lambda chart: FlaskBackend(
            chart, "api", image=IMAGE, secrets=FAKE_SECRETS, resources=resources
        )
    )
    expected = concurrency(sized_by).workers
    assert expected == math.ceil(sized_by / 1000) == 2  # what the docs promise, and not 1

    pod = start_pod(documents, tmp_path)
    try:
        pod.wait_until_started("/startupz")
        assert workers_of(pod, expected) == expected, pod.logs()
    finally:
        pod.kill()
