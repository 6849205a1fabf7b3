"""The real control plane the cluster tests run: build, start, test and memory costs.

    .venv/bin/python bench/control_plane.py     prints the BENCHMARKS.md section (also from run.py)

Cold build: `scripts/build-control-plane` into a throwaway output folder with an empty Go build
cache (the module cache stays: downloading is the network's time, not the build's).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.cluster.controlplane import ControlPlane, binaries_dir  # noqa: E402

START_SECONDS_MAX = 15.0
STARTS = 3


def cold_build_seconds() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        # A copy of the repository's build inputs, so the real cache folder is not touched.
        work = Path(scratch) / "repo"
        (work / "scripts").mkdir(parents=True)
        (work / "tools").mkdir()
        (work / "requirements").mkdir()
        for module in ("controlplane", "crds"):
            subprocess.run(["cp", "-r", ROOT / "tools" / module, work / "tools"], check=True)
        subprocess.run(
            ["cp", ROOT / "scripts" / "build-control-plane", work / "scripts"], check=True
        )
        subprocess.run(["cp", ROOT / "requirements" / "go.txt", work / "requirements"], check=True)
        env = {**os.environ, "GOCACHE": str(Path(scratch) / "gocache")}
        start = time.perf_counter()
        subprocess.run(
            [work / "scripts" / "build-control-plane"], env=env, check=True, capture_output=True
        )
        return time.perf_counter() - start


def start_seconds(bin_dir: Path) -> list[float]:
    times = []
    for _ in range(STARTS):
        plane = ControlPlane(bin_dir)
        start = time.perf_counter()
        plane.start()
        times.append(time.perf_counter() - start)
        plane.stop()
    return times


def peak_memory_mib(bin_dir: Path) -> dict[str, float]:
    """Peak RSS (VmHWM) of each component after applying the backend tier and the examples."""
    with ControlPlane(bin_dir) as plane, tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if k not in ("NAMESPACE", "SECRET_KEY")}
        for script in (ROOT / "main.py", *sorted((ROOT / "examples").glob("*.py"))):
            outdir = Path(scratch) / script.stem
            subprocess.run(
                [sys.executable, script],
                env={**env, "CDK8S_OUTDIR": str(outdir)},
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            plane.kubectl("apply", "-f", str(outdir))
        time.sleep(5)  # the controllers create ReplicaSets and Pods
        peaks = {}
        for component in plane.components:
            status = Path(f"/proc/{component.process.pid}/status").read_text()
            (line,) = (x for x in status.splitlines() if x.startswith("VmHWM:"))
            peaks[component.name] = int(line.split()[1]) / 1024
        return peaks


def cluster_tests_seconds() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/cluster"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def section(*, cold_build: bool = True) -> tuple[list[str], list[tuple[str, str, str, bool]]]:
    """Markdown lines and goals (name, measured, target, met)."""
    bin_dir = binaries_dir()
    if bin_dir is None:
        return ["Not measured: run `make control-plane` first."], []
    versions = subprocess.run(
        [bin_dir / "kube-apiserver", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    etcd = subprocess.run(
        [bin_dir / "etcd", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    build = cold_build_seconds() if cold_build else None
    starts = start_seconds(bin_dir)
    peaks = peak_memory_mib(bin_dir)
    tests = cluster_tests_seconds()
    start = statistics.median(starts)
    lines = [
        f"{versions}, {etcd}; 2 cores shared with nothing else but the OS.",
        "",
        "| What | Measured |",
        "| --- | --- |",
        f"| Cold build of the four binaries (empty Go build cache) | "
        f"{'not measured' if build is None else f'{build:.0f} s'} |",
        f"| Start to ready (etcd, kube-apiserver /readyz, controller manager), median of "
        f"{STARTS} | {start:.1f} s ({', '.join(f'{t:.1f}' for t in starts)}) |",
        f"| `pytest tests/cluster` wall time (one control plane for the session) | {tests:.0f} s |",
        "| Peak memory (VmHWM) after applying the tier and the examples | "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peaks.items())
        + f"; total {sum(peaks.values()):.0f} MiB |",
    ]
    goals = [
        (
            "Control plane start to ready",
            f"{start:.1f} s",
            f"< {START_SECONDS_MAX:.0f} s",
            start < START_SECONDS_MAX,
        )
    ]
    return lines, goals


if __name__ == "__main__":
    lines, goals = section(cold_build="--no-cold-build" not in sys.argv)
    print("\n".join(lines))
    for goal in goals:
        print(goal)
