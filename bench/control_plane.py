"""The real control plane the cluster tests run: build, start, test and memory costs.

    .venv/bin/python bench/control_plane.py [--no-cold-build]   its section of BENCHMARKS.md

Cold build: `scripts/build-control-plane` into a throwaway output folder with an empty Go build
cache (the module cache stays: downloading is the network's time, not the build's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import sections  # noqa: E402

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


def section(*, cold_build: bool) -> list[str]:
    """The markdown section, markers included."""
    bin_dir = binaries_dir()
    start, end = sections.markers("control-plane")
    heading = ["## The control plane of the cluster tests", ""]
    if bin_dir is None:
        return [start, *heading, "Not measured: run `make control-plane` first.", end]
    apiserver = subprocess.run(
        [bin_dir / "kube-apiserver", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    etcd = subprocess.run(
        [bin_dir / "etcd", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    build = cold_build_seconds() if cold_build else None
    starts = start_seconds(bin_dir)
    peaks = peak_memory_mib(bin_dir)
    tests = cluster_tests_seconds()
    start_median = statistics.median(starts)
    met = "met" if start_median < START_SECONDS_MAX else "**missed**"
    return [
        start,
        *heading,
        f"{apiserver} (kube-apiserver, kube-controller-manager, kubectl), {etcd}; "
        f"load average when measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| What | Measured | Goal |",
        "| --- | --- | --- |",
        "| Cold build of the four binaries (empty Go build cache, `make control-plane`) | "
        + ("not measured in this run" if build is None else f"{build:.0f} s")
        + " | |",
        f"| Start to ready (etcd, kube-apiserver /readyz, controller manager), median of "
        f"{STARTS} | {start_median:.1f} s ({', '.join(f'{t:.1f}' for t in starts)}) | "
        f"< {START_SECONDS_MAX:.0f} s: {met} |",
        f"| `pytest tests/cluster` wall time (one control plane a session) | {tests:.0f} s | |",
        "| Peak memory (VmHWM) after applying the tier and the examples | "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peaks.items())
        + f"; total {sum(peaks.values()):.0f} MiB | |",
        end,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cold-build", action="store_true", help="skip the cold build")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    sections.write(args.output, "control-plane", section(cold_build=not args.no_cold_build))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
