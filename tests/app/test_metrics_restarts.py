"""Why a worker was replaced, as the master counts it (backend_api.metrics: the worker's exit
hook leaves a reason, the master's child_exit reads it). The pod sandbox proves recycled and
killed for real (tests/test_pod_metrics.py); these are the paths a test cannot cause cheaply:
a heartbeat timeout, a memory recycle, a master that is stopping."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend_api import metrics


def restarts(reason: str) -> float:
    return float(metrics.WORKER_RESTARTS.labels(reason)._value.get())


def worker(pid: int, **state: object) -> SimpleNamespace:
    defaults = {"nr": 10, "max_requests": sys.maxsize, "alive": False, "aborted": False}
    return SimpleNamespace(pid=pid, **{**defaults, **state})


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(metrics.DIR_ENV, str(tmp_path))
    return tmp_path


RUNNING = SimpleNamespace(LISTENERS=["a socket"])
STOPPING = SimpleNamespace(LISTENERS=[])


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"nr": 100, "max_requests": 100}, metrics.RECYCLED),  # max_requests
        ({"memory_budget": 1.0}, metrics.RECYCLED),  # over its memory share (any rss > 1 byte)
        ({"alive": True}, metrics.ERROR),  # left its loop unasked
    ],
)
def test_a_worker_that_leaves_says_why(directory, state, reason):
    before = restarts(reason)
    leaving = worker(101, **state)

    metrics.write_exit_reason(leaving)
    metrics.record_exit(RUNNING, leaving)

    assert restarts(reason) == before + 1
    assert not list(directory.iterdir())  # the master read and removed the note


def test_a_worker_with_no_exit_note_was_killed(directory):
    before = restarts(metrics.KILLED)

    metrics.record_exit(RUNNING, worker(102))

    assert restarts(metrics.KILLED) == before + 1


def test_a_worker_the_master_aborted_timed_out(directory):
    before, killed = restarts(metrics.TIMEOUT), restarts(metrics.KILLED)

    metrics.record_exit(RUNNING, worker(103, aborted=True))

    assert (restarts(metrics.TIMEOUT), restarts(metrics.KILLED)) == (before + 1, killed)


def test_workers_stopped_by_the_master_are_not_restarts(directory):
    counts = {r: restarts(r) for r in ("recycled", "timeout", "killed", "error")}
    asked = worker(104)  # alive False, under its limits: SIGTERM from the master (a reload)
    metrics.write_exit_reason(asked)
    metrics.record_exit(RUNNING, asked)

    metrics.record_exit(STOPPING, worker(105))  # killed while the master shuts down

    assert {r: restarts(r) for r in counts} == counts
