"""bench/database.py --smoke: the database benchmark runs once, tiny, against a real PostgreSQL,
and writes its section; it never touches BENCHMARKS.md."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_database_bench_smoke_writes_its_section(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("the create benchmark needs wrk (a POST load); not installed here")
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\nkept\n")
    before = (ROOT / "BENCHMARKS.md").read_bytes()

    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "database.py"), "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert "## Database: items API and migrations" in text
    assert "| upgrade on an empty database (0001: items) |" in text
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before
