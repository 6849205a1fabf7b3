"""Sections of BENCHMARKS.md that a benchmark of its own writes between markers.

bench/run.py writes the file whole and keeps every marked section; bench/database.py and
bench/control_plane.py each rewrite only theirs, so one can be rerun without the others.
"""

from __future__ import annotations

import re
from pathlib import Path

MARKED = re.compile(r"<!-- (?P<name>[\w-]+):start -->.*?<!-- (?P=name):end -->", re.DOTALL)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write(output: Path, name: str, lines: list[str]) -> None:
    """Replace section `name` of output (or append it), its markers included in `lines`."""
    start, end = markers(name)
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    block = "\n".join(lines)
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    output.write_text(text, encoding="utf-8")


def kept(text: str) -> list[str]:
    """Every marked section of text, in order, for a rewrite of the rest."""
    return [match.group(0) for match in MARKED.finditer(text)]
