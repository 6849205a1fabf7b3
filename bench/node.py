"""The real node the node tests run: image build, node start-up and apply-to-Ready costs.

    .venv/bin/python bench/node.py [--cold-build]   its section of BENCHMARKS.md

Node start-up: `Node.start()` (namespaces, control plane, containerd, kubelet, kube-proxy, the
images imported) until the Node is Ready and the images are in. Apply-to-Ready: PostgreSQL on
the node, then dist/ (synthesized with DATABASE_URL pointing at it) applied with the seed's
`kubectl apply -f .`, until the migration Job is Complete and the Deployment's pods are Ready.
Each on a fresh node, STARTS times. --cold-build: scripts/build-images into an empty cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
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

from tests.node.node import Node, images_dir, node_binaries_dir  # noqa: E402
from tests.node.test_node import POSTGRESQL_MANIFEST, synthesize  # noqa: E402

STARTS = 3


def cold_image_build_seconds() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "FLASK_BACKEND_CACHE": scratch}
        start = time.perf_counter()
        subprocess.run(
            [ROOT / "scripts" / "build-images"], env=env, check=True, capture_output=True
        )
        return time.perf_counter() - start


def one_run(bin_dir: Path, images: Path) -> tuple[float, float, float]:
    """(start-up to Ready, apply to Job Complete, apply to pods Ready) on a fresh node."""
    node = Node(bin_dir, images)
    began = time.perf_counter()
    node.start()
    try:
        started = time.perf_counter() - began
        node.kubectl_ok("apply", "-f", str(POSTGRESQL_MANIFEST))
        node.kubectl_ok(
            *("create", "secret", "generic", "postgresql", "-n", "database"),
            "--from-literal=POSTGRES_PASSWORD=bench-only-password",
        )
        node.kubectl_ok("rollout", "status", "deployment/postgresql", "-n", "database")
        scratch = Path(tempfile.mkdtemp())
        try:
            dist = scratch / "dist"
            synthesize(dist, "postgresql://app:bench-only-password@10.96.0.50:5432/app")
            applied = time.perf_counter()
            node.kubectl_ok("apply", "-f", str(dist))
            node.kubectl_ok("wait", "--for=condition=complete", "job", "--all", "-n", "backend")
            job = time.perf_counter() - applied
            node.kubectl_ok("rollout", "status", "deployment/flask-api", "-n", "backend")
            ready = time.perf_counter() - applied
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        node.stop()
    return started, job, ready


def section(*, cold_build: bool) -> list[str]:
    """The markdown section, markers included."""
    bin_dir, images = node_binaries_dir(), images_dir()
    start, end = sections.markers("node")
    heading = ["## The real node of the node tests", ""]
    if bin_dir is None or images is None:
        return [start, *heading, "Not measured: run `make control-plane images` first.", end]
    build = cold_image_build_seconds() if cold_build else None
    runs = [one_run(bin_dir, images) for _ in range(STARTS)]
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for p in sorted(images.iterdir())
    )

    def row(what: str, values: list[float]) -> str:
        listed = ", ".join(f"{v:.1f}" for v in values)
        return f"| {what}, median of {STARTS} | {statistics.median(values):.1f} s ({listed}) |"

    return [
        start,
        *heading,
        f"Kubernetes v1.37.2 kubelet, kube-proxy and kube-scheduler; Debian's containerd and runc; "
        f"load average when measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
        f"Image archives: {sizes}.",
        "",
        "| What | Measured |",
        "| --- | --- |",
        "| Cold image build (empty cache: Debian root filesystem, bases, every image) | "
        + ("not measured in this run" if build is None else f"{build:.0f} s")
        + " |",
        row("Node start-up to Node Ready with the images imported", [r[0] for r in runs]),
        row("dist/ apply to migration Job Complete", [r[1] for r in runs]),
        row("dist/ apply to the Deployment's pods Ready", [r[2] for r in runs]),
        end,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-build", action="store_true", help="also time a cold image build")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    sections.write(args.output, "node", section(cold_build=args.cold_build))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
