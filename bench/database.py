"""The database tier's speed: items API throughput against a real PostgreSQL, and the migration
Job's wall time. Writes the "Database" section of BENCHMARKS.md (between its markers).

    .venv/bin/python bench/database.py            full run (about 20 minutes)
    .venv/bin/python bench/database.py --smoke --output F   tiny run for the tests

Fair on a shared, noisy 2-core machine:
- Pinned as bench/load.py: gunicorn on CPU 1 (the construct's default 1000m limit), wrk on
  CPU 0, and PostgreSQL on CPU 0 too (in a cluster it has a node of its own; here it must not
  take the server's core). Its CPU per cell is measured and printed: if it ever came near a
  whole core, the database, not the server, would be the bottleneck.
- Interleaved: every configuration serves at once (one shared, migrated database, seeded with
  rows); each round runs every cell (create/list x concurrency) over all of them, one after
  the other, the order rotated each round. A burst of load from elsewhere then hits every
  configuration alike instead of one. Each cell is the median of the rounds; the spread (min
  to max req/s) shows how noisy the machine was. The load average is printed at start and end.
- Warmed up: pools filled and code paths run before the first measured round.
- Rounds, not long cells. The machine's own speed wanders: a fixed pure-Python loop on an
  idle CPU 1 ran 8.4 to 11.8 million iterations/s in consecutive 3 s windows, and one server
  alone, create c=16, served 406 to 695 req/s over consecutive 10 s runs (the same number of
  system calls per request: the CPU, not the server, changed). A cell is then only as good
  as the number of rounds that sample it, so 3 rounds of 6 s (each run's first fraction of a
  second is slow by a varying amount, so not much shorter).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "app")]

import load  # noqa: E402
import sections  # noqa: E402

from backend_api.serving import concurrency  # noqa: E402
from tests.postgres import PostgresServer, start_server  # noqa: E402

START, END = sections.markers("database")
CONCURRENCIES = (16, 64)
ENDPOINTS = {"create": ("POST", "/api/v1/items"), "list": ("GET", "/api/v1/items?limit=20")}
# (worker class, workers, requests per worker, connections per worker): what a fair reader
# expects next to ours, on the same one core, each with a connection per request it runs at
# once (the shipped rule, backend_api/serving.py). "ours" is the shipped worker
# (backend_api/worker.py); sync has no threads.
SWEEP = (
    *(("gthread", w, t, t) for w in (1, 2) for t in (8, 16, 32)),
    *(("ours", 1, t, t) for t in (8, 16, 32, 64)),
    *(("ours", 2, t, t) for t in (16, 32)),
    ("sync", 2, 1, 1),
)
SMOKE_SWEEP = (("gthread", 1, 8, 8),)
SEED_ROWS = 1000  # list pages through a table that is not empty from its first request
THROUGHPUT_SHARE_MIN, P99_RATIO_MAX = 0.90, 1.25
# Every configuration keeps its pool open at once: far more than PostgreSQL's default 100.
MAX_CONNECTIONS = 800
DB_CPU = load.CLIENT_CPU
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench/database] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree (the processes alive now)."""
    total = 0
    for member in load.tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def settle(servers: list[load.Server], limit: float = 10.0) -> None:
    """Wait until no server is still answering a past cell's requests.

    wrk stops at the end of a cell, but an overloaded server (two event loops on one core) may
    work off its backlog for seconds after that, on the core the next server is measured on.
    """
    deadline = time.monotonic() + limit
    before = sum(cpu_seconds(server.process.pid) for server in servers)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = sum(cpu_seconds(server.process.pid) for server in servers)
        if now - before < 0.02:  # under 10% of a core over 0.2 s: idle
            return
        before = now


def wrk(port: int, method: str, path: str, connections: int, seconds: float) -> load.Measurement:
    if load.generator() != "wrk":
        raise RuntimeError("this benchmark needs wrk for its POST bodies (apt-get install wrk)")
    script = "wrk_post_item.lua" if method == "POST" else "wrk_report.lua"
    command = ["wrk", "--threads", "1", "--connections", str(connections)]
    command += ["--duration", f"{max(1, round(seconds))}s", "--timeout", "10s"]
    command += ["--script", str(BENCH / script), f"http://127.0.0.1:{port}{path}"]
    done = subprocess.run(
        [*load.pin(load.CLIENT_CPU), *command],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    return load.Measurement(**json.loads(done.stdout.strip().splitlines()[-1]))


def migrate(url: str, command: str = "upgrade") -> float:
    """Wall time of the migration Job's command, as the container runs it."""
    env = {"PATH": os.environ["PATH"], "FLASK_DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "backend_api.migrate", command],
        cwd=ROOT / "app",
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def interpreter_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def seed(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute(
            "INSERT INTO items (name) SELECT 'seed ' || n FROM generate_series(1, %s) AS n",
            (rows,),
        )


def specs(url: str, smoke: bool) -> list[load.ServerSpec]:
    """The shipped config first (the image's command, the construct's default env), then the
    sweep without its copy of the shipped config."""
    configs = [load.shipped(1000)]
    for kind, w, t, pool in SMOKE_SWEEP if smoke else SWEEP:
        if (kind, w, t, pool) == shipped_in_sweep():
            continue  # the shipped config
        spec = load.swept(w, t, kind)
        env = {**spec.env, "DB_POOL_SIZE": str(pool)}  # beyond 32 only when said
        configs.append(load.ServerSpec(spec.label, spec.args, env, spec.workers))
    url_env = {"FLASK_DATABASE_URL": url}
    return [
        load.ServerSpec(spec.label, spec.args, {**spec.env, **url_env}, spec.workers)
        for spec in configs
    ]


@dataclass
class Run:
    """One measurement of one configuration in one cell."""

    measurement: load.Measurement
    server_cpu: float  # share of a core the gunicorn tree used
    database_cpu: float  # share of a core PostgreSQL used


@dataclass(frozen=True)
class Cell:
    rps: float  # median over the rounds
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    failures: int  # summed over the rounds
    server_cpu: float
    database_cpu: float

    @classmethod
    def of(cls, runs: list[Run]) -> Cell:
        rps = [r.measurement.rps for r in runs]
        return cls(
            rps=statistics.median(rps),
            rps_min=min(rps),
            rps_max=max(rps),
            p50_ms=statistics.median(r.measurement.p50_ms for r in runs),
            p99_ms=statistics.median(r.measurement.p99_ms for r in runs),
            failures=sum(r.measurement.failures for r in runs),
            server_cpu=statistics.median(r.server_cpu for r in runs),
            database_cpu=statistics.median(r.database_cpu for r in runs),
        )


Cells = dict[tuple[str, int], dict[str, Cell]]  # (endpoint, c) -> config label -> cell


def measure(
    database: PostgresServer, url: str, smoke: bool, rounds: int, seconds: float, work: Path
) -> tuple[Cells, float]:
    """Every configuration serving at once; rounds of every cell over all of them. Returns the
    cells and the shipped worker's peak resident memory (MiB)."""
    configs = specs(url, smoke)
    cells = [(name, c) for name in ENDPOINTS for c in CONCURRENCIES]
    runs: dict[tuple[str, int], dict[str, list[Run]]] = {cell: {} for cell in cells}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(load.gunicorn(spec, work)) for spec in configs]
        if not smoke:
            for server in servers:  # fill the pools, run every code path once
                for method, path in ENDPOINTS.values():
                    wrk(server.port, method, path, 64, 1)
        for round_ in range(rounds):
            order = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
            for name, c in cells:
                for server in order:
                    settle(servers)
                    server_before = cpu_seconds(server.process.pid)
                    database_before = cpu_seconds(database.process.pid)  # type: ignore[union-attr]
                    started = time.monotonic()
                    measured = wrk(server.port, *ENDPOINTS[name], c, seconds)
                    elapsed = time.monotonic() - started
                    run = Run(
                        measured,
                        (cpu_seconds(server.process.pid) - server_before) / elapsed,
                        (cpu_seconds(database.process.pid) - database_before) / elapsed,  # type: ignore[union-attr]
                    )
                    runs[name, c].setdefault(server.spec.label, []).append(run)
                    log(
                        f"round {round_ + 1}/{rounds} {name} c={c} {server.spec.label}: "
                        f"{measured.rps:.0f} req/s, p99 {measured.p99_ms:.0f} ms, "
                        f"{measured.failures} errors, load {load_average()}"
                    )
        shipped_workers = load.children(servers[0].process.pid)
        peak_mib = max(load.status_kib(pid, "VmHWM") for pid in shipped_workers) / 1024
    shipped_label = configs[0].label
    table: Cells = {}
    for (name, c), by_label in runs.items():
        # A configuration that serves exactly as the shipped one at this concurrency is more
        # samples of it, not an alternative: its runs join the shipped config's.
        same = twins(c, smoke)
        pooled = [run for label in (shipped_label, *same) for run in by_label[label]]
        table[name, c] = {shipped_label: Cell.of(pooled)} | {
            label: Cell.of(r)
            for label, r in by_label.items()
            if label != shipped_label and label not in same
        }
    return table, peak_mib


def twins(c: int, smoke: bool) -> list[str]:
    """The sweep's configurations that serve exactly as the shipped one does with c clients:
    our worker, as many workers, and at least c slots and connections per worker in both, so
    no request ever waits for a slot and at most c connections open (the pool opens them on
    demand). They differ only in limits these c clients never reach."""
    _, workers, threads, _ = shipped = shipped_in_sweep()
    if threads < c:
        return []
    return [
        load.swept(w, t, kind).label
        for kind, w, t, pool in (SMOKE_SWEEP if smoke else SWEEP)
        if kind == "ours" and w == workers and min(t, pool) >= c and (kind, w, t, pool) != shipped
    ]


def shipped_in_sweep() -> tuple[str, int, int, int]:
    """The shipped config as a sweep entry: our worker, the default 1000m limit's workers and
    requests per worker, a connection per request."""
    workers, threads = concurrency(1000)
    return ("ours", workers, threads, threads)


def pin_database(database: PostgresServer) -> None:
    """PostgreSQL and every backend it forks later on the client's core, off the server's."""
    if load.pinning_available():
        for pid in load.tree(database.process.pid):  # type: ignore[union-attr]
            subprocess.run(["taskset", "-a", "-p", "-c", DB_CPU, str(pid)], capture_output=True)


def verdict(shipped: Cell, best_rps: float, best_p99: float) -> bool:
    return (
        shipped.rps >= THROUGHPUT_SHARE_MIN * best_rps
        and shipped.p99_ms <= P99_RATIO_MAX * best_p99
        and shipped.failures == 0
    )


def section(
    shipped_label: str,
    table: Cells,
    migration: dict[str, float],
    run: dict[str, object],
    smoke: bool,
) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rounds, seconds = run["rounds"], run["seconds"]
    lines = [
        START,
        "## Database: items API and migrations",
        "",
        "Generated by `bench/database.py`"
        + (" (**smoke run: the numbers are not meaningful**)" if smoke else "")
        + f" on {now}; reproduce: `.venv/bin/python bench/database.py`.",
        "",
        f"Real PostgreSQL ({server_version()}), durable settings (fsync, synchronous_commit), one "
        f"database seeded with {SEED_ROWS:,} rows. gunicorn pinned to CPU {load.SERVER_CPU} (the "
        f"default 1000m limit); wrk and PostgreSQL on CPU {DB_CPU}. Every configuration serves "
        f"at once and the cells are interleaved: {rounds} rounds, each running every cell over "
        f"all configurations ({seconds:g} s each, order rotated per round), after a warm-up. "
        "req/s and latencies are medians over the rounds; *spread* is the lowest to highest "
        "req/s of the rounds; *CPU* is the share of a core used by gunicorn / by PostgreSQL. "
        + "".join(
            f"At c={c}, {' and '.join(twins(c, smoke))} serve exactly as the shipped config "
            "does (no request waits for a slot, the pool opens connections on demand): their "
            "runs are pooled with the shipped config's instead of being compared with it. "
            for c in CONCURRENCIES
            if twins(c, smoke)
        )
        + f"Load average (1, 5, 15 min): {run['load_start']} at start, {run['load_end']} at end "
        "(the machine has 2 cores).",
        "",
        "| config | endpoint | c | req/s | spread | p50 ms | p99 ms | errors | CPU server / db "
        "| vs best req/s | p99 vs best |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    goals = []
    for (name, c), cells in table.items():
        best = max(cell.rps for cell in cells.values())
        best_p99 = min(cell.p99_ms for cell in cells.values() if cell.rps >= 0.9 * best)
        for label, cell in sorted(cells.items(), key=lambda item: item[0] != shipped_label):
            mark = " **(shipped)**" if label == shipped_label else ""
            lines.append(
                f"| {label}{mark} | {name} | {c} | {cell.rps:.0f} | {cell.rps_min:.0f}-"
                f"{cell.rps_max:.0f} | {cell.p50_ms:.1f} | {cell.p99_ms:.1f} | {cell.failures} | "
                f"{cell.server_cpu:.0%} / {cell.database_cpu:.0%} | {cell.rps / best:.0%} | "
                f"{cell.p99_ms / best_p99:.2f}x |"
            )
        shipped = cells[shipped_label]
        best_label = max(cells, key=lambda label: cells[label].rps)
        same = twins(c, smoke)
        pooled = f" (its runs pooled with {', '.join(same)}: the same server at c={c})"
        goals.append(
            f"| {name} c={c}{pooled if same else ''} | {shipped.rps / best:.0%} of best req/s "
            f"({best_label}), p99 "
            f"{shipped.p99_ms / best_p99:.2f}x, {shipped.failures} errors | "
            f">= {THROUGHPUT_SHARE_MIN:.0%}, <= {P99_RATIO_MAX}x, 0 | "
            + ("met" if verdict(shipped, best, best_p99) else "**not met**")
            + " |"
        )
    lines += [
        "",
        "The shipped config against the best of the sweep (p99 compared with the lowest p99 "
        "among configs within 90% of the best req/s):",
        "",
        "| cell | shipped | goal | verdict |",
        "|---|---|---|---|",
        *goals,
        "",
        f"The shipped worker's peak resident memory over the run: {run['peak_mib']:.0f} MiB "
        "(it restarts itself past 102 MiB, its share of the default 256 MiB limit).",
        "",
        "Migration Job (`python -m backend_api.migrate upgrade`, median of "
        f"{migration['runs']:.0f} runs):",
        "",
        "| what | wall time |",
        "|---|---|",
        f"| upgrade on an empty database (0001: items) | {migration['empty']:.2f} s |",
        f"| upgrade again at head (a re-applied Job) | {migration['noop']:.2f} s |",
        f"| `check` | {migration['check']:.2f} s |",
        f"| Python interpreter start alone (the floor) | {migration['python']:.2f} s |",
        END,
    ]
    return lines


def server_version() -> str:
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not binaries:
        return "unknown"
    done = subprocess.run([str(binaries[-1]), "--version"], capture_output=True, text=True)
    return done.stdout.strip().removeprefix("postgres (PostgreSQL) ")


def migrations(server: PostgresServer, runs: int) -> dict[str, float]:
    timings = {
        "runs": runs,
        "empty": statistics.median(migrate(server.create_database("migrate")) for _ in range(runs)),
        "python": statistics.median(interpreter_start() for _ in range(runs)),
    }
    url = server.create_database("migrate")
    migrate(url)
    timings["noop"] = statistics.median(migrate(url) for _ in range(runs))
    timings["check"] = statistics.median(migrate(url, "check") for _ in range(runs))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, fast run (for the tests)")
    parser.add_argument("--rounds", type=int, help="rounds of every cell (default 3; smoke 1)")
    parser.add_argument("--seconds", type=float, help="load per cell (default 6; smoke 1)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    os.environ.pop("DB_POOL_SIZE", None)  # each configuration says its own
    rounds = args.rounds or (1 if args.smoke else 3)
    seconds = args.seconds or (1.0 if args.smoke else 6.0)
    run: dict[str, object] = {"rounds": rounds, "seconds": seconds, "load_start": load_average()}
    log(f"load average at start: {run['load_start']}")
    work = Path(tempfile.mkdtemp(prefix="bench-database-"))
    server = start_server({"max_connections": str(MAX_CONNECTIONS)})  # durable defaults
    try:
        pin_database(server)
        url = server.create_database("bench")
        migrate(url)
        seed(url, SEED_ROWS)
        table, run["peak_mib"] = measure(server, url, args.smoke, rounds, seconds, work)
        run["load_end"] = load_average()
        migration = migrations(server, 1 if args.smoke else 5)
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log(f"load average at end: {run['load_end']}")
    shipped_label = load.shipped(1000).label
    sections.write(
        args.output, "database", section(shipped_label, table, migration, run, args.smoke)
    )
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
