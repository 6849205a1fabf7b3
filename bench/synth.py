"""Synth cost: wall time of fresh `python` processes, compared A/B/A/B.

Every sample is a new process, because that is how users synthesize (`make synth`, CI): the
jsii kernel start and the assembly loads are part of the cost. A and B alternate so that drift
(CPU frequency, page cache, other load) hits both sides alike; the median of the per-pair
ratios is the headline number.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = str(ROOT / "bench" / "synth_target.py")
TIMEOUT_SECONDS = 120  # one synth; a hung jsii kernel must not hang the benchmark


@dataclass
class Comparison:
    label_a: str
    label_b: str
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def median_a(self) -> float:
        return statistics.median(self.a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.b)

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios a/b: robust to drift between pairs."""
        return statistics.median(a / b for a, b in zip(self.a, self.b, strict=True))


@dataclass
class SynthResults:
    floor: Comparison
    plain: Comparison  # main.py's objects as plain ApiObjects vs the floor: the least they cost
    by_count: dict[int, Comparison]  # N -> ours (a) vs naive (b)
    optimized: Comparison | None  # ours vs naive at the largest N under `python -O`, extra info
    bare_floor: Comparison | None  # main.py vs an app without imports/k8s, extra info
    pairs: dict[str, int]

    @property
    def counts(self) -> tuple[int, int]:
        return min(self.by_count), max(self.by_count)

    def marginal(self, side: str) -> float:
        """Seconds per extra backend: (t(N_max) - t(N_min)) / (N_max - N_min), from medians."""
        low, high = self.counts
        attr = "median_a" if side == "ours" else "median_b"
        return (getattr(self.by_count[high], attr) - getattr(self.by_count[low], attr)) / (
            high - low
        )

    @property
    def marginal_ratio(self) -> float:
        return self.marginal("ours") / self.marginal("naive")


def sample(argv: list[str], env: dict[str, str]) -> float:
    """Seconds for one synth into a fresh output directory."""
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        argv = [arg.replace("{outdir}", outdir) for arg in argv]
        env = {key: value.replace("{outdir}", outdir) for key, value in env.items()}
        start = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr.decode()[-2000:]}")
    return elapsed


def compare(
    label_a: str,
    a: tuple[list[str], dict[str, str]],
    label_b: str,
    b: tuple[list[str], dict[str, str]],
    pairs: int,
    warmup: bool,
) -> Comparison:
    if warmup:  # first runs pay for cold caches (the .pyc files, the Node binary, the tarballs)
        sample(*a)
        sample(*b)
    result = Comparison(label_a, label_b)
    for _ in range(pairs):
        result.a.append(sample(*a))
        result.b.append(sample(*b))
    return result


def main_py_objects(main_py: tuple[list[str], dict[str, str]], scratch: Path) -> Path:
    """main.py's objects, as JSON in scratch (what the "objects" target emits)."""
    import yaml

    command, env = main_py
    outdir = scratch / "dist"
    subprocess.run(
        command,
        env={**os.environ, **{k: v.replace("{outdir}", str(outdir)) for k, v in env.items()}},
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
    )
    documents = [
        d for f in sorted(outdir.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d
    ]
    path = scratch / "objects.json"
    path.write_text(json.dumps(documents), encoding="utf-8")
    return path


def target(*args: str, optimize: bool = False) -> tuple[list[str], dict[str, str]]:
    flags = ["-O"] if optimize else []
    return [sys.executable, *flags, TARGET, *args, "{outdir}"], {}


def run(smoke: bool, log: Callable[[str], None] = print) -> SynthResults:
    counts = (1, 2) if smoke else (1, 10, 50, 200)
    # The 200-backend pair takes ~7 s; 7 pairs of everything keeps this part near two minutes.
    # The floor gets more pairs: its goal is a ratio near 1, on a machine whose load swings.
    pairs = {"floor": 1 if smoke else 15, "counts": 1 if smoke else 7, "optimized": 3, "bare": 5}
    warmup = not smoke

    # main.py with default settings: SECRET_KEY set so it does not generate one, output to a
    # temporary directory so dist/ is untouched.
    main_py = (
        [sys.executable, str(ROOT / "main.py")],
        {"SECRET_KEY": "fake-bench-secret-not-a-real-one-0123", "CDK8S_OUTDIR": "{outdir}"},
    )
    log(f"synth: main.py vs the floor (an empty cdk8s chart), {pairs['floor']} pairs")
    floor = compare(
        "main.py", main_py, "empty cdk8s chart", target("cdk8s"), pairs["floor"], warmup=warmup
    )

    log(f"synth: main.py's objects as plain ApiObjects vs the floor, {pairs['floor']} pairs")
    with tempfile.TemporaryDirectory() as scratch:
        objects = main_py_objects(main_py, Path(scratch))
        plain = compare(
            "plain objects",
            target("objects", str(objects)),
            "empty cdk8s chart",
            target("cdk8s"),
            pairs["floor"],
            warmup=warmup,
        )

    by_count = {}
    for count in counts:
        log(f"synth: {count} backend(s), ours vs naive, {pairs['counts']} pairs")
        by_count[count] = compare(
            "ours",
            target("ours", str(count)),
            "naive",
            target("naive", str(count)),
            pairs["counts"],
            warmup=warmup,
        )

    optimized = bare_floor = None
    if not smoke:
        log(f"synth: main.py vs an empty app without imports/k8s (extra), {pairs['bare']} pairs")
        bare_floor = compare(
            "main.py", main_py, "bare app", target("bare"), pairs["bare"], warmup=False
        )
        high = max(counts)
        log(f"synth: {high} backends under python -O (extra), {pairs['optimized']} pairs")
        optimized = compare(
            "ours -O",
            target("ours", str(high), optimize=True),
            "naive -O",
            target("naive", str(high), optimize=True),
            pairs["optimized"],
            warmup=False,
        )
    return SynthResults(floor, plain, by_count, optimized, bare_floor, pairs)
