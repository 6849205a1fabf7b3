"""bench/database.py, bench/metrics.py and bench/attacks.py --smoke: each benchmark that writes a
marked section of BENCHMARKS.md runs once, tiny (the database one against a real PostgreSQL), and
writes its section into the file it is given; it never touches BENCHMARKS.md, and leaves no
process behind (tests/bench_run.py)."""

import shutil
from pathlib import Path

import pytest

from tests import bench_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "database.py",
            (
                "## Database: items API and migrations",
                "| upgrade on an empty database (0001: items) |",
            ),
        ),
        (
            "metrics.py",
            ("## Metrics: the cost of Prometheus metrics on the request path", "| metrics on |"),
        ),
        (
            "attacks.py",
            ("## Issue 24: every wait bounded", "| 8 slow uploads: ordinary clients' share |"),
        ),
    ],
)
def test_bench_smoke_writes_its_section(
    tmp_path: Path, script: str, expected: tuple[str, ...]
) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("the benchmark loads the server with wrk (POST bodies); not installed here")
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\nkept\n")
    before = (ROOT / "BENCHMARKS.md").read_bytes()

    done = bench_run.run(script, "--smoke", "--output", str(output), timeout=180)

    assert done.returncode == 0, done.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    for line in expected:
        assert line in text
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before
