"""Prometheus metrics, proven in the pod sandbox as the manifests run them: counts after
traffic, no counter drops when workers are recycled or killed, bounded series under a scan."""

from __future__ import annotations

import copy
import http.client
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import main
from tests.pod import (
    ON_THE_MANIFEST_PORTS,
    PodProcess,
    descendants,
    is_gunicorn,
    require_sandbox,
    start_pod,
)
from tests.postgres import PostgresServer
from tests.support import FAKE_SECRETS, by_kind, load_dir

RECYCLE_AFTER = 100  # requests per worker: the test's max_requests

pytestmark = ON_THE_MANIFEST_PORTS


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer):
    """The default chart (metrics on), with gunicorn told to recycle its workers every
    RECYCLE_AFTER requests (GUNICORN_CMD_ARGS, as an operator could add it to the env)."""
    require_sandbox()
    outdir = tmp_path_factory.mktemp("synth") / "dist"
    environ = FAKE_SECRETS | {"DATABASE_URL": postgres.create_database("metrics")}
    main.synthesize(main.resolve(main.parse_args([]), environ), outdir)
    ((_, documents),) = load_dir(outdir)
    documents = copy.deepcopy(documents)
    (container,) = by_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    container["env"].append(
        {
            "name": "GUNICORN_CMD_ARGS",
            "value": f"--max-requests {RECYCLE_AFTER} --max-requests-jitter 0",
        }
    )
    return documents


@pytest.fixture(scope="module")
def pod(manifests: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory):
    process = start_pod(manifests, tmp_path_factory.mktemp("pod"))
    try:
        process.wait_until_started("/startupz")
        yield process
    finally:
        process.kill()


def metrics_port_of(manifests: list[dict[str, Any]]) -> int:
    (container,) = by_kind(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    (port,) = (p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    return int(port)


def scrape(pod: PodProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    connection = http.client.HTTPConnection("127.0.0.1", pod.metrics_port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_of(samples: dict[Any, float], route: str, status: str = "200") -> float:
    labels = (("method", "GET"), ("route", route), ("status", status))
    return samples.get(("http_requests_total", labels), 0.0)


def restarts(samples: dict[Any, float], reason: str) -> float:
    return samples[("gunicorn_worker_restarts_total", (("reason", reason),))]


def get_many(port: int, paths: list[str], clients: int = 8) -> list[int]:
    """GET every path (keep-alive connections, a few at once); their statuses."""

    def run(chunk: list[str]) -> list[int]:
        statuses = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in chunk:
            for attempt in range(3):  # a recycled worker closes its kept-alive connection
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    response.read()
                    statuses.append(response.status)
                    break
                except (ConnectionError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    if attempt == 2:
                        raise
        connection.close()
        return statuses

    chunks = [paths[i::clients] for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        return [status for statuses in pool.map(run, chunks) for status in statuses]


def workers(pod: PodProcess) -> list[int]:
    master = pod.gunicorn_master()
    return [pid for pid in descendants(master) if is_gunicorn(pid)]


def wait_for_workers(pod: PodProcess, count: int, not_in: set[int]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        fresh = set(workers(pod)) - not_in
        if len(fresh) >= count and pod.get("/startupz")[0] == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"no new worker within 15 s:\n{pod.logs()}")


@pytest.fixture
def quiet_pod(pod: PodProcess) -> PodProcess:
    """The module's pod, with every worker booted."""
    wait_for_workers(pod, 1, set())
    return pod


def test_metrics_are_served_on_the_declared_port_not_the_api_port(quiet_pod, manifests):
    assert quiet_pod.metrics_port == metrics_port_of(manifests) != quiet_pod.port
    assert quiet_pod.get("/metrics")[0] == 404  # the API port does not serve them

    samples = scrape(quiet_pod)

    assert samples[("backend_api_info", (("version", "0.1.0"),))] == 1


def test_counts_after_traffic_are_the_requests_sent(quiet_pod):
    before = requests_of(scrape(quiet_pod), "/api/v1/info")

    statuses = get_many(quiet_pod.port, ["/api/v1/info"] * 50, clients=2)

    assert statuses == [200] * 50
    samples = scrape(quiet_pod)
    assert requests_of(samples, "/api/v1/info") - before == 50
    labels = (("method", "GET"), ("route", "/api/v1/info"))
    assert samples[("http_request_duration_seconds_count", labels)] >= 50
    assert samples[("http_requests_in_flight", ())] == 0


def test_recycled_workers_lose_no_count(quiet_pod):
    """Workers leave every RECYCLE_AFTER requests; the sum over all of them never drops."""
    samples = scrape(quiet_pod)
    before, recycled = requests_of(samples, "/api/v1/info"), restarts(samples, "recycled")
    seen = [before]

    for _ in range(5):
        statuses = get_many(quiet_pod.port, ["/api/v1/info"] * RECYCLE_AFTER, clients=4)
        assert statuses == [200] * RECYCLE_AFTER
        seen.append(requests_of(scrape(quiet_pod), "/api/v1/info"))

    assert seen == sorted(seen), "a counter went down"
    assert seen[-1] - before == 5 * RECYCLE_AFTER
    # A recycling worker keeps accepting until its loop notices (up to a second), so 500
    # requests recycle fewer than 5 workers; the master counts each one when it reaps it.
    deadline = time.monotonic() + 5
    while restarts(scrape(quiet_pod), "recycled") == recycled and time.monotonic() < deadline:
        time.sleep(0.1)
    assert restarts(scrape(quiet_pod), "recycled") >= recycled + 1
    assert "Autorestarting worker" in quiet_pod.logs()


def test_a_killed_worker_is_counted_and_its_counts_stay(quiet_pod):
    get_many(quiet_pod.port, ["/api/v1/info"] * 10, clients=1)
    samples = scrape(quiet_pod)
    before, killed = requests_of(samples, "/api/v1/info"), restarts(samples, "killed")
    running = set(workers(quiet_pod))

    os.kill(min(running), signal.SIGKILL)
    wait_for_workers(quiet_pod, 1, running)

    deadline = time.monotonic() + 10
    while restarts(scrape(quiet_pod), "killed") == killed and time.monotonic() < deadline:
        time.sleep(0.1)
    samples = scrape(quiet_pod)
    assert restarts(samples, "killed") == killed + 1
    assert requests_of(samples, "/api/v1/info") >= before
    assert restarts(samples, "timeout") == 0


def test_ten_thousand_random_paths_add_no_series(quiet_pod):
    get_many(quiet_pod.port, ["/no-such-path"], clients=1)  # the unmatched series exists
    series_before = set(scrape(quiet_pod))

    paths = [f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}" for _ in range(10_000)]
    statuses = get_many(quiet_pod.port, paths)

    assert set(statuses) == {404}
    samples = scrape(quiet_pod)
    assert set(samples) == series_before
    assert requests_of(samples, "unmatched", "404") >= 10_001
    assert not any(p in str(key) for key in samples for p in paths[:100])


def test_a_restarted_container_starts_from_empty_files(manifests, tmp_path: Path):
    """The emptyDir outlives a container restart: the master empties it, so old counts are
    not added twice. Modelled by the master's own startup on a directory with a stale file."""
    from backend_api import metrics

    stale = tmp_path / "counter_1.db"
    stale.write_bytes(b"stale")
    mine = tmp_path / "notes.txt"
    mine.write_text("not ours")

    metrics.clear_directory(tmp_path)

    assert not stale.exists()
    assert mine.exists()  # nothing the metrics did not write is deleted
