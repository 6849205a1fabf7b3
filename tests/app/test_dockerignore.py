"""app/.dockerignore lets into the build context everything app/Dockerfile COPYs.

The rules are applied as the image builders do (moby/patternmatcher, which docker, buildah and
podman share): each line a pattern in Go's filepath.Match syntax plus `**`, cleaned, a leading
`/` dropped; `!` lets back in; the last pattern that matches a path or one of its parent folders
decides. A COPY of something the context lacks fails the build ("no items matching glob").
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import PurePosixPath

from tests.app.test_dockerfile import APP_DIR, instructions


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` line: lets back in what earlier lines left out


def parse(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        pattern = str(PurePosixPath(line.removeprefix("!").strip())).lstrip("/") or "."
        rules.append(Rule(re.compile(_to_regex(pattern)), exclusion))
    return rules


def _to_regex(pattern: str) -> str:
    """patternmatcher's translation: `**` any number of folders, `*` and `?` within one."""
    out, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif char in "[]":
            out += char
        else:
            out += re.escape(char)
        i += 1
    return out + "$"


def excluded(rules: list[Rule], path: str) -> bool:
    """Whether the builder leaves path (relative to the context, with `/`) out of the context."""
    parents = PurePosixPath(path).parts[:-1]
    candidates = [path] + ["/".join(parents[: i + 1]) for i in range(len(parents))]
    matched = False
    for rule in rules:
        if rule.exclusion != matched:
            continue  # only a `!` rule can change a match, only a plain one a non-match
        if any(rule.regex.match(candidate) for candidate in candidates):
            matched = not rule.exclusion
    return matched


def copied_sources() -> list[str]:
    """The context paths the Dockerfile's COPY/ADD lines name (not those from other stages)."""
    sources = []
    for line in instructions():
        words = line.split()
        if words[0] not in ("COPY", "ADD") or any(w.startswith("--from=") for w in words):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        sources += [source.rstrip("/") or "." for source in args[:-1]]
    return sources


def tracked_files_under(source: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", source],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return listed.stdout.split()


def left_out(dockerignore: str) -> list[str]:
    """What the Dockerfile COPYs that these rules keep out of the context: each source itself,
    and every file of it that git tracks."""
    rules = parse(dockerignore)
    return [
        path
        for source in copied_sources()
        for path in [source, *tracked_files_under(source)]
        if excluded(rules, path)
    ]


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    assert left_out((APP_DIR / ".dockerignore").read_text()) == []


def test_the_dockerfile_copies_the_code_its_dependencies_and_the_migrations() -> None:
    assert copied_sources() == ["requirements.txt", "gunicorn.conf.py", "migrations", "backend_api"]


def test_a_dockerignore_that_lets_migrations_stay_out_is_caught() -> None:
    # The .dockerignore before this test existed: `docker build` failed at COPY migrations/.
    old = "*\n!requirements.txt\n!gunicorn.conf.py\n!backend_api/\n**/__pycache__\n"
    assert left_out(old)[0] == "migrations"
    assert "migrations/versions/0001_items.py" in left_out(old)


def test_rules_apply_as_the_builder_applies_them() -> None:
    rules = parse("*\n!backend_api/\n**/__pycache__\n**/*.py[co]\n# a comment\n/docs\n")
    assert excluded(rules, "migrations")
    assert excluded(rules, "migrations/env.py")  # its parent folder matches `*`
    assert not excluded(rules, "backend_api/api.py")  # let back in through its parent
    assert excluded(rules, "backend_api/__pycache__/api.cpython-311.pyc")
    assert excluded(rules, "backend_api/api.pyc")
    assert excluded(rules, "docs/index.md")  # a leading / is dropped
    assert not excluded(parse("**/__pycache__"), "backend_api/api.py")
    assert excluded(parse("a/**/b"), "a/b")
    assert excluded(parse("a/**/b"), "a/x/y/b")
    assert not excluded(parse("a?c"), "a/c")
