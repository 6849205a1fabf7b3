"""Worker models side by side: slow clients (issue 10) and normal load (issues 10, 11, 15).

Every candidate is the shipped gunicorn.conf.py with one thing changed on the command line, so
the differences are the worker model and its counts. Servers are pinned to CPU 1 and load to
CPU 0 as in load.py; the runs are interleaved round by round, and the goals use medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import load
import slowclients
from load import Log, Measurement, ServerSpec, Summary

CONFIG = ("--config", "gunicorn.conf.py")
ONE_CORE = {"CPU_LIMIT_MILLICORES": "1000"}
API = "/api/v1/info"  # CPU-bound: no I/O at all
WAIT = "/wait"  # I/O-bound: 20 ms of waiting (bench/wait_wsgi.py), as a database call
ORDINARY_CONNECTIONS = 16
SLICE_SECONDS = 5.0  # ordinary load is measured in slices this long (medians)
# The last commit before the worker model changed (issue 10): "before" is app/ exactly as it
# shipped then (1 gthread x 4, access log through logging, max_requests 20,000).
BEFORE_COMMIT = "d20c073"


def shipped() -> ServerSpec:
    return load.shipped(1000)


def no_access_log() -> ServerSpec:
    nolog = str(load.BENCH_DIR / "gunicorn_nolog.conf.py")
    return ServerSpec("shipped without the access log", ("--config", nolog), ONE_CORE, 1)


def before(workdir: Path, commit: str = BEFORE_COMMIT, label: str = "1 gthread x 4") -> ServerSpec:
    """The shipped config and app of `commit`, extracted from git into `workdir`."""
    archive = subprocess.run(
        ["git", "-C", str(load.ROOT), "archive", commit, "app"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True, timeout=60)
    return ServerSpec(f"before ({commit}): {label}", CONFIG, ONE_CORE, 1, app_dir=workdir / "app")


def gthread(threads: int, note: str = "") -> ServerSpec:
    env = {**ONE_CORE, "GUNICORN_THREADS": str(threads)}
    args = (*CONFIG, "--worker-class", "gthread")
    return ServerSpec(f"1 gthread x {threads}{note}", args, env, 1)


def stock_gevent() -> ServerSpec:
    return ServerSpec(
        "gunicorn's own gevent worker", (*CONFIG, "--worker-class", "gevent"), ONE_CORE, 1
    )


@dataclass
class Attack:
    label: str
    held: int
    before: Summary  # medians of the slices alone
    during: Summary  # medians of the slices under attack
    share: float  # req/s under attack over alone: the median of the pairs' ratios
    probes: slowclients.ProbeLog
    rss_before_mib: float
    rss_during_mib: float
    shares: list[float]  # each pair's ratio, in the order run


@dataclass
class WorkerResults:
    attack_seconds: float
    slow_connections: int
    attacks: list[Attack]
    normal_seconds: float
    rounds: int
    normal: dict[str, dict[str, list[Measurement]]]  # label -> path -> one run per round
    shipped_label: str
    # The shipped server's process tree before and after the normal-load rounds: what a worker
    # that is never recycled by request count grows by.
    rss_start_mib: float
    rss_end_mib: float
    requests_served: int
    # "before" / "shipped" -> medians of bench/costs.py's microseconds, runs interleaved
    costs: dict[str, dict[str, float]]


def rss_mib(pid: int) -> float:
    return sum(load.status_kib(p, "VmRSS") for p in load.tree(pid)) / 1024


def costs(app_dir: Path, rounds: int) -> list[dict[str, float]]:
    """bench/costs.py in a fresh process per round, pinned like the servers."""
    runs = []
    for _ in range(rounds):
        done = subprocess.run(
            [*load.pin(load.SERVER_CPU), sys.executable, str(load.BENCH_DIR / "costs.py")],
            cwd=app_dir,
            env={**os.environ, "PYTHONPATH": str(app_dir)},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    return runs


def attack(
    server: load.Server,
    seconds: float,
    connections: int,
    hold: Callable[[int, int], contextlib.AbstractContextManager[int]] = slowclients.slow_headers,
) -> Attack:
    """Ordinary load in slices, alternately alone and while `connections` attackers are held
    (slowloris by default; `hold` opens them) and the probes run, `seconds` of attack in all.
    The slices pair up, one alone and one attacked back to back (in the order alone,
    attacked, attacked, alone, ...), so the machine's speed, which drifts over seconds,
    weighs on both sides of each pair alike: the share is the median of the pairs' ratios."""
    pairs = max(1, round(seconds / SLICE_SECONDS))
    slice_s = seconds / pairs

    def ordinary() -> Measurement:
        return load.load(server.port, API, ORDINARY_CONNECTIONS, slice_s)

    def attacked() -> Measurement:
        with hold(server.port, connections) as accepted:
            held.append(accepted)
            prober = slowclients.probe_during(server.port, slice_s, probes)
            measured = ordinary()
            rss_during.append(rss_mib(server.process.pid))
            prober.join(timeout=slice_s + 10)
        return measured

    probes = slowclients.ProbeLog()
    held: list[int] = []  # connections each attacked slice held
    rss_during: list[float] = []
    rss_before = rss_mib(server.process.pid)
    alone: list[Measurement] = []
    during: list[Measurement] = []
    for pair in range(pairs):
        if pair % 2 == 0:
            alone.append(ordinary())
            during.append(attacked())
        else:
            during.append(attacked())
            alone.append(ordinary())
    return Attack(
        server.spec.label,
        min(held),  # the goal needs every slice to hold them all
        load.summarize(alone),
        load.summarize(during),
        load.paired_ratio(during, alone, "rps"),
        probes,
        rss_before,
        rss_during[-1],
        [d.rps / a.rps if a.rps else 0.0 for d, a in zip(during, alone, strict=True)],
    )


def run(smoke: bool, log: Log = print) -> WorkerResults:
    attack_seconds = 1.0 if smoke else 20.0
    slow_connections = 20 if smoke else 200
    normal_seconds = 1.0 if smoke else 5.0
    rounds = 1 if smoke else 5  # the goals pair the servers round by round (run.py)
    paths = (API,) if smoke else (API, WAIT)

    attacks = []
    normal: dict[str, dict[str, list[Measurement]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        workdir = Path(tmp)
        if smoke:
            attacked, loaded = [shipped()], [shipped(), load.bare()]
        else:
            old = before(workdir)
            attacked = [shipped(), old, gthread(256), stock_gevent()]
            loaded = [shipped(), no_access_log(), load.bare(), old, gthread(32), stock_gevent()]
        for spec in attacked:
            log(f"slow clients: {spec.label}, {slow_connections} connections")
            with load.gunicorn(spec, workdir) as server:
                load.warm_up(server, smoke)
                attacks.append(attack(server, attack_seconds, slow_connections))
        log(f"normal load: {len(loaded)} servers, {rounds} interleaved rounds, c=64")
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(load.gunicorn(s, workdir)) for s in loaded]
            for server in servers:
                load.warm_up(server, smoke)
            ours = servers[0]
            rss_start = rss_mib(ours.process.pid)
            for round_ in range(rounds):
                for server in load.rotated(servers, round_):
                    for path in paths:
                        if path == WAIT and not server.spec.shipped_config:
                            continue  # gunicorn's defaults serve the app as shipped: no /wait
                        runs = normal.setdefault(server.spec.label, {}).setdefault(path, [])
                        runs.append(load.load(server.port, path, 64, normal_seconds))
                        time.sleep(0.2)
            rss_end = rss_mib(ours.process.pid)
        cost_runs: dict[str, list[dict[str, float]]] = {}
        if not smoke:
            log("per-request costs: access line and app, before and shipped, interleaved")
            for _ in range(3):
                for label, app_dir in (("before", old.app_dir), ("shipped", load.APP_DIR)):
                    cost_runs.setdefault(label, []).extend(costs(app_dir, 1))
    served = sum(m.requests for runs in normal[ours.spec.label].values() for m in runs)
    return WorkerResults(
        attack_seconds,
        slow_connections,
        attacks,
        normal_seconds,
        rounds,
        normal,
        shipped().label,
        rss_start,
        rss_end,
        served,
        {
            label: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            for label, runs in cost_runs.items()
        },
    )


def summary(results: WorkerResults, label: str, path: str) -> Summary:
    return load.summarize(results.normal[label][path])
