"""The database tier's speed: items API throughput against a real PostgreSQL, and the migration
Job's wall time. Writes the "Database" section of BENCHMARKS.md (between its markers).

    .venv/bin/python bench/database.py            full run (about 30 minutes)
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
- Screened, then re-measured. The verdict compares the shipped config with the best of 12
  others, and the best of 12 noisy measurements is a lucky one: in one run the identical
  servers 1 ours x 16, x 32 and x 64 (at c=16 each runs all 16 requests at once) served
  list at 410, 524 and 614 req/s. So the sweep only picks the finalists of each cell (the
  best req/s, and the lowest p99 within 90% of it); they and the shipped config are then
  measured again, head to head, over more rounds, and the goal is judged on those runs.
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
# Rounds of the head-to-head re-measure (smoke: 1). One round's ratio of two servers is noisy:
# over 20 rounds of create c=16 the shipped config's req/s over 2 ours x 32's ranged 0.66 to
# 1.16 (median 1.06) while the machine was quiet; a median of 5 rounds once said 0.89.
FINAL_ROUNDS = 11
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
Runs = dict[tuple[str, int], dict[str, list[Run]]]  # (endpoint, c) -> config label -> runs


def measure(
    database: PostgresServer,
    url: str,
    smoke: bool,
    rounds: int,
    final_rounds: int,
    seconds: float,
    work: Path,
) -> tuple[Cells, Runs, float]:
    """Every configuration serving at once: rounds of every cell over all of them (the sweep),
    then rounds of each cell over its finalists and the shipped config (the final). Returns
    the sweep's table, the final's runs and the shipped worker's peak resident memory (MiB)."""
    configs = specs(url, smoke)
    shipped_label = configs[0].label
    cells = [(name, c) for name in ENDPOINTS for c in CONCURRENCIES]
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(load.gunicorn(spec, work)) for spec in configs]
        if not smoke:
            for server in servers:  # fill the pools, run every code path once
                for method, path in ENDPOINTS.values():
                    wrk(server.port, method, path, 64, 1)
        sweep = pooled(
            run_rounds(database, servers, {cell: servers for cell in cells}, rounds, seconds),
            shipped_label,
            smoke,
        )
        entrants = {}
        for cell in cells:
            chosen = {shipped_label, *finalists(sweep[cell], shipped_label)}
            entrants[cell] = [server for server in servers if server.spec.label in chosen]
        final = run_rounds(database, servers, entrants, final_rounds, seconds, "final ")
        shipped_workers = load.children(servers[0].process.pid)
        peak_mib = max(load.status_kib(pid, "VmHWM") for pid in shipped_workers) / 1024
    return sweep, final, peak_mib


def run_rounds(
    database: PostgresServer,
    servers: list[load.Server],
    entrants: dict[tuple[str, int], list[load.Server]],
    rounds: int,
    seconds: float,
    stage: str = "",
) -> Runs:
    """Each round runs every cell over its entrants, one after the other, the order rotated
    per round."""
    runs: Runs = {cell: {} for cell in entrants}
    for round_ in range(rounds):
        for (name, c), entered in entrants.items():
            for server in load.rotated(entered, round_):
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
                    f"{stage}round {round_ + 1}/{rounds} {name} c={c} {server.spec.label}: "
                    f"{measured.rps:.0f} req/s, p99 {measured.p99_ms:.0f} ms, "
                    f"{measured.failures} errors, load {load_average()}"
                )
    return runs


def pooled(runs: Runs, shipped_label: str, smoke: bool) -> Cells:
    """A cell per configuration. A configuration that serves exactly as the shipped one at
    this concurrency is more samples of it, not an alternative: its runs join the shipped
    config's."""
    table: Cells = {}
    for (name, c), by_label in runs.items():
        same = twins(c, smoke)
        shipped = [run for label in (shipped_label, *same) for run in by_label[label]]
        table[name, c] = {shipped_label: Cell.of(shipped)} | {
            label: Cell.of(r)
            for label, r in by_label.items()
            if label != shipped_label and label not in same
        }
    return table


def best(cells: dict[str, Cell]) -> tuple[str, str]:
    """The configuration with the most req/s, and the one with the lowest p99 among those
    within THROUGHPUT_SHARE_MIN of it (a server that is fast only because it serves less is no
    reference)."""
    most = max(cells, key=lambda label: cells[label].rps)
    floor = THROUGHPUT_SHARE_MIN * cells[most].rps
    within_floor = [label for label in cells if cells[label].rps >= floor]
    return most, min(within_floor, key=lambda label: cells[label].p99_ms)


def finalists(cells: dict[str, Cell], shipped_label: str) -> set[str]:
    """The sweep's strongest alternatives to the shipped config in a cell."""
    return set(best({label: cell for label, cell in cells.items() if label != shipped_label}))


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


def section(
    shipped_label: str,
    sweep: Cells,
    final_runs: Runs,
    migration: dict[str, float],
    run: dict[str, object],
    smoke: bool,
) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rounds, seconds, final_rounds = run["rounds"], run["seconds"], run["final_rounds"]
    others = len(next(iter(sweep.values()))) - 1  # the configurations besides the shipped one
    final = {
        cell: {label: Cell.of(runs) for label, runs in by_label.items()}
        for cell, by_label in final_runs.items()
    }
    header = [
        "| config | endpoint | c | req/s | spread | p50 ms | p99 ms | errors | CPU server / db "
        "| vs best req/s | p99 vs best |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
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
        "req/s of the rounds; *CPU* is the share of a core used by gunicorn / by PostgreSQL; "
        "*best* is the most req/s, and for p99 the lowest among configs within 90% of it. "
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
        "### The sweep",
        "",
        *header,
        *table_rows(sweep, shipped_label),
        "",
        "### The final: the shipped config against each cell's finalists",
        "",
        f"The best of {others} noisy measurements is a lucky one, so the sweep only picks each "
        "cell's finalists (its most req/s, and its lowest p99 within 90% of that, the shipped "
        f"config aside); they and the shipped config are measured again, {final_rounds} rounds of "
        f"{seconds:g} s, interleaved, and the goal is judged on these runs. A round runs them "
        "back to back, so the verdict compares them round by round: the share and the p99 "
        "ratio are medians of the per-round ratios (the machine's speed drifts over seconds, "
        "and runs in one round share it; the table's medians do not pair them).",
        "",
        *header,
        *table_rows(final, shipped_label),
        "",
        "| cell | shipped | goal | verdict |",
        "|---|---|---|---|",
    ]
    for (name, c), cells in final.items():
        shipped = cells[shipped_label]
        most, fastest = best(cells)
        measured = {
            label: [r.measurement for r in runs] for label, runs in final_runs[name, c].items()
        }
        share = load.paired_ratio(measured[shipped_label], measured[most], "rps")
        p99_ratio = load.paired_ratio(measured[shipped_label], measured[fastest], "p99_ms")
        met = share >= THROUGHPUT_SHARE_MIN and p99_ratio <= P99_RATIO_MAX and shipped.failures == 0
        lines.append(
            f"| {name} c={c} | {share:.0%} of best req/s ({most}), p99 {p99_ratio:.2f}x "
            f"({fastest}), {shipped.failures} errors | "
            f">= {THROUGHPUT_SHARE_MIN:.0%}, <= {P99_RATIO_MAX}x, 0 | "
            + ("met" if met else "**not met**")
            + " |"
        )
    lines += [
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


def table_rows(table: Cells, shipped_label: str) -> list[str]:
    rows = []
    for (name, c), cells in table.items():
        most, fastest = best(cells)
        for label, cell in sorted(cells.items(), key=lambda item: item[0] != shipped_label):
            mark = " **(shipped)**" if label == shipped_label else ""
            rows.append(
                f"| {label}{mark} | {name} | {c} | {cell.rps:.0f} | {cell.rps_min:.0f}-"
                f"{cell.rps_max:.0f} | {cell.p50_ms:.1f} | {cell.p99_ms:.1f} | {cell.failures} | "
                f"{cell.server_cpu:.0%} / {cell.database_cpu:.0%} | "
                f"{cell.rps / cells[most].rps:.0%} | {cell.p99_ms / cells[fastest].p99_ms:.2f}x |"
            )
    return rows


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
    final_rounds = 1 if args.smoke else FINAL_ROUNDS
    run: dict[str, object] = {
        "rounds": rounds,
        "seconds": seconds,
        "final_rounds": final_rounds,
        "load_start": load_average(),
    }
    log(f"load average at start: {run['load_start']}")
    work = Path(tempfile.mkdtemp(prefix="bench-database-"))
    server = start_server({"max_connections": str(MAX_CONNECTIONS)})  # durable defaults
    try:
        pin_database(server)
        url = server.create_database("bench")
        migrate(url)
        seed(url, SEED_ROWS)
        sweep, final, run["peak_mib"] = measure(
            server, url, args.smoke, rounds, final_rounds, seconds, work
        )
        run["load_end"] = load_average()
        migration = migrations(server, 1 if args.smoke else 5)
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log(f"load average at end: {run['load_end']}")
    shipped_label = load.shipped(1000).label
    sections.write(
        args.output, "database", section(shipped_label, sweep, final, migration, run, args.smoke)
    )
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
