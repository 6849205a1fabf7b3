"""Where a synth's time goes: one synth_target run under cProfile, as a JSON line.

    python bench/profile_synth.py ours|naive N

Reports the wall time, the jsii round trips to the Node kernel by request type (every one is a
JSON message over a pipe and back), and the cumulative time of the usual suspects: the round
trips themselves, jsii's argument type checks (typeguard + typing.get_type_hints, run under
`if __debug__` in the generated bindings), the construct's own validation, and App.synth().
cProfile slows Python code down, so the shares matter more than the absolute numbers.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_target  # after the path insert above; it sets up main.py and lib/

# (file fragment, function name) -> label; cumulative times, so nested entries are not summed.
SUSPECTS = {
    ("jsii/_kernel/providers/process.py", "send"): "jsii round trips (Python <-> Node)",
    ("typing.py", "get_type_hints"): "typing.get_type_hints (jsii type checks)",
    ("typeguard/__init__.py", "check_type"): "typeguard.check_type (jsii type checks)",
    ("flask_backend/backend.py", "__init__"): "FlaskBackend.__init__ (all of it)",
    ("flask_backend/validation.py", "*"): "flask_backend.validation (own frames)",
    ("cdk8s/__init__.py", "synth"): "App.synth (YAML out)",
}


def main(kind: str, count: int) -> dict[str, Any]:
    from jsii._kernel.providers.process import _NodeProcess

    round_trips: Counter[str] = Counter()
    calls: Counter[str] = Counter()  # which classes and methods the round trips are for
    original = _NodeProcess.send

    def counting_send(self: Any, request: Any, response_type: Any) -> Any:
        round_trips[type(request).__name__.removesuffix("Request")] += 1
        fqn = getattr(request, "fqn", None) or "object"  # an Invoke names no class
        member = getattr(request, "method", None) or getattr(request, "property", None) or ""
        calls[f"{fqn.rpartition('.')[2]}.{member}".rstrip(".")] += 1
        return original(self, request, response_type)

    _NodeProcess.send = counting_send  # type: ignore[method-assign]

    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as outdir:
        start = time.perf_counter()
        profiler.enable()
        synth_target.main([kind, str(count), outdir])
        profiler.disable()
        wall = time.perf_counter() - start

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for (filename, _line, function), (_cc, _nc, tottime, cumtime, _callers) in stats.items():
        for (fragment, name), label in SUSPECTS.items():
            if fragment in filename.replace("\\", "/"):
                if name == "*":
                    cumulative[label] += tottime
                elif function == name:
                    # The outermost call's cumtime covers its recursion; take the largest.
                    cumulative[label] = max(cumulative[label], cumtime)
        own[f"{Path(filename).parent.name}/{Path(filename).name}:{function}"] += tottime
    return {
        "kind": kind,
        "count": count,
        "wall_s": wall,
        "round_trips": dict(round_trips),
        "round_trips_total": sum(round_trips.values()),
        "top_calls": dict(calls.most_common(12)),
        "cumulative_s": dict(cumulative),
        "top_own_s": dict(own.most_common(8)),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
