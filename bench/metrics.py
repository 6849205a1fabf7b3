"""What Prometheus metrics cost: the shipped server with metrics on (as the construct deploys it)
against the same server with metrics off, at c=64 on /api/v1/info, and how fast /metrics answers
while the API is under that load. Writes the "Metrics" section of BENCHMARKS.md.

    .venv/bin/python bench/metrics.py                  full run (about 3 minutes)
    .venv/bin/python bench/metrics.py --smoke --output F   tiny run for the tests

The same fairness as bench/load.py: gunicorn pinned to CPU 1 (the default 1000m limit), wrk to
CPU 0. On and off alternate, several rounds, and the medians are compared: the machine is
shared, so a single pair would measure the neighbours as much as the metrics.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "app")]

import load  # noqa: E402
import sections  # noqa: E402

from backend_api.metrics import PATH as METRICS_PATH  # noqa: E402

ENDPOINT, CONNECTIONS = "/api/v1/info", 64
RPS_LOSS_MAX, P99_RISE_MAX, SCRAPE_MS_MAX = 0.05, 0.10, 50.0


def log(message: str) -> None:
    print(f"[bench/metrics] {message}", file=sys.stderr, flush=True)


def spec(metrics_on: bool, directory: Path) -> load.ServerSpec:
    base = load.shipped(1000)
    if not metrics_on:
        return replace(base, label="metrics off")
    env = {
        **base.env,
        "METRICS_PORT": str(load.free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    return replace(base, label="metrics on", env=env)


def scrape_ms(port: int) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", METRICS_PATH)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of gunicorn's processes (master and workers) so far."""
    total = 0
    for process in load.tree(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def run(
    metrics_on: bool, seconds: float, workdir: Path
) -> tuple[load.Measurement, list[float], float]:
    """One measured load (after a warm-up); with metrics on, a scrape every 0.5 s during it.
    Also the server's CPU time per request (us): unlike req/s, it barely moves when other
    processes share the machine."""
    directory = Path(tempfile.mkdtemp(dir=workdir))
    server_spec = spec(metrics_on, directory)
    scrapes: list[float] = []
    with load.gunicorn(server_spec, workdir) as server:
        load.load(server.port, ENDPOINT, CONNECTIONS, min(2.0, seconds))  # warm-up
        done = threading.Event()

        def scraper() -> None:
            port = int(server_spec.env["METRICS_PORT"])
            while not done.wait(0.5):
                scrapes.append(scrape_ms(port))

        thread = threading.Thread(target=scraper, daemon=True)
        if metrics_on:
            thread.start()
        cpu_before = cpu_seconds(server.process.pid)
        try:
            measured = load.load(server.port, ENDPOINT, CONNECTIONS, seconds)
            cpu_us = (cpu_seconds(server.process.pid) - cpu_before) / measured.requests * 1e6
        finally:
            done.set()
            if metrics_on:
                thread.join(timeout=10)
    return measured, scrapes, cpu_us


def section(
    results: dict[bool, list[load.Measurement]],
    cpu: dict[bool, list[float]],
    scrapes: list[float],
    seconds: float,
    smoke: bool,
    load_average: tuple[float, float],
) -> list[str]:
    start, end = sections.markers("metrics")
    off_rps = statistics.median(m.rps for m in results[False])
    on_rps = statistics.median(m.rps for m in results[True])
    off_p99 = statistics.median(m.p99_ms for m in results[False])
    on_p99 = statistics.median(m.p99_ms for m in results[True])
    loss, rise = 1 - on_rps / off_rps, on_p99 / off_p99 - 1
    scrape_p50, scrape_max = statistics.median(scrapes), max(scrapes)
    ordered = sorted(scrapes)
    scrape_p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    cpu_off, cpu_on = statistics.median(cpu[False]), statistics.median(cpu[True])
    verdict = (
        "meets"
        if loss <= RPS_LOSS_MAX and rise <= P99_RISE_MAX and scrape_max < SCRAPE_MS_MAX
        else "MISSES"
    )
    rounds = len(results[True])
    lines = [
        start,
        "## Metrics: the cost of Prometheus metrics on the request path",
        "",
        f"Generated by bench/metrics.py on {datetime.date.today().isoformat()}"
        + (" (smoke run: numbers meaningless)" if smoke else "")
        + ". The shipped server (1 worker on CPU 1, as the default 1000m limit gives) with metrics "
        "on (METRICS_PORT and PROMETHEUS_MULTIPROC_DIR set as the construct sets them; here a "
        f"free port and a temporary directory) and off, {rounds} alternating "
        f"rounds of {seconds:.0f} s each at c={CONNECTIONS} on GET {ENDPOINT} "
        f"({load.generator()}, on CPU 0), medians. While each metrics-on round ran, /metrics "
        "was scraped every 0.5 s (a new connection each time, as Prometheus does). "
        f"Load average of the shared 2-core machine: {load_average[0]:.1f} at the start, "
        f"{load_average[1]:.1f} at the end: req/s and latencies move with the neighbours; the "
        "server's CPU time per request (master and workers, scrapes included) much less.",
        "",
        "| | req/s | p50 ms | p99 ms | failures | server CPU us/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for on in (False, True):
        runs = results[on]
        lines.append(
            f"| metrics {'on' if on else 'off'} | {statistics.median(m.rps for m in runs):,.0f} "
            f"| {statistics.median(m.p50_ms for m in runs):.2f} "
            f"| {statistics.median(m.p99_ms for m in runs):.2f} "
            f"| {sum(m.failures for m in runs)} | {statistics.median(cpu[on]):.0f} |"
        )
    lines += [
        "",
        f"- req/s loss: {loss:+.1%} (allowed: <= {RPS_LOSS_MAX:.0%}); p99 rise: {rise:+.1%} "
        f"(allowed: <= {P99_RISE_MAX:.0%}); CPU per request: {cpu_on / cpu_off - 1:+.1%}.",
        f"- /metrics under that load: median {scrape_p50:.1f} ms, p95 {scrape_p95:.1f} ms, "
        f"slowest {scrape_max:.1f} ms of "
        f"{len(scrapes)} scrapes (allowed: < {SCRAPE_MS_MAX:.0f} ms). The master serves it, so "
        "it does not queue behind the 64 API connections.",
        f"- Verdict: {verdict} the issue's bounds.",
        "- Per round, req/s off: "
        + ", ".join(f"{m.rps:,.0f}" for m in results[False])
        + "; on: "
        + ", ".join(f"{m.rps:,.0f}" for m in results[True])
        + ".",
        end,
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, fast run (for the tests)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.smoke else 10.0
    rounds = 1 if args.smoke else 5
    results: dict[bool, list[load.Measurement]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    scrapes: list[float] = []
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as workdir:
        for round_ in range(rounds):
            # Alternate which goes first, so neither always runs on a warmer machine.
            for on in (False, True) if round_ % 2 == 0 else (True, False):
                measured, scraped, cpu_us = run(on, seconds, Path(workdir))
                results[on].append(measured)
                cpu[on].append(cpu_us)
                scrapes += scraped
                log(
                    f"round {round_ + 1}/{rounds} metrics {'on' if on else 'off'}: "
                    f"{measured.rps:,.0f} req/s, p99 {measured.p99_ms:.2f} ms, "
                    f"{cpu_us:.0f} us CPU/request"
                )
    if not scrapes:  # a smoke run may be shorter than one scrape interval
        scrapes = [float("nan")]
    lines = section(results, cpu, scrapes, seconds, args.smoke, (load_start, os.getloadavg()[0]))
    sections.write(args.output, "metrics", lines)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
