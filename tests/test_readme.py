"""README.md: its code runs, its reference matches the code, and what it names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import main
from scripts import gen_reference
from tests.support import (
    FAKE_SECRETS,
    K8S_VERSION,
    NATIVE_SIDECARS_K8S_VERSION,
    ROOT,
    clean_env,
    load_dir,
    validate_strict,
)

README = (ROOT / "README.md").read_text(encoding="utf-8")
# (line number, code) of every ```python block.
PYTHON_BLOCKS = [
    (README.count("\n", 0, match.start()) + 1, match.group(1))
    for match in re.finditer(r"^```python\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)
]

# Each block runs in a process of its own: a fresh namespace, and a fresh jsii Node process that
# sees CDK8S_OUTDIR (Node reads its environment once, when cdk8s is first imported). Nothing is
# imported before the block; jsii's Node is the venv's (tests/conftest.py puts it on PATH).
RUNNER = """
import sys
exec(compile(sys.stdin.read(), sys.argv[1], "exec"), {"__name__": "__main__"})
"""


def test_the_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 2


def run_block(line: int, block: str, cwd: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    """One README block, in a fresh process in cwd, writing to outdir."""
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(ROOT), f"README.md block at line {line}"],
        input=block,
        text=True,
        cwd=cwd,
        env=clean_env(CDK8S_OUTDIR=str(outdir), **FAKE_SECRETS),
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("line", "block"), PYTHON_BLOCKS, ids=[f"README.md:{line}" for line, _ in PYTHON_BLOCKS]
)
def test_python_block_runs_and_writes_valid_kubernetes(line: int, block: str, tmp_path: Path):
    outdir = tmp_path / "dist"

    result = run_block(line, block, tmp_path, outdir)

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert "end-of-life" not in result.stderr  # jsii's banner for an unsupported Node.js
    documents = [d for _, docs in load_dir(outdir) for d in docs]
    assert documents
    # Native sidecars need Kubernetes 1.29 (README: they say so); everything else 1.27.
    validate_strict(documents, NATIVE_SIDECARS_K8S_VERSION if "sidecars=" in block else K8S_VERSION)


def test_reference_section_matches_the_generator():
    # Refresh with: .venv/bin/python scripts/gen_reference.py --write
    assert gen_reference.section(README) == gen_reference.generate()


def test_every_make_target_named_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([\w-]+)", README)) | set(
        re.findall(r"^make ([\w-]+)", README, flags=re.MULTILINE)
    )

    assert named
    assert named <= targets, f"not in the Makefile: {sorted(named - targets)}"


def test_every_main_setting_is_documented():
    documented = set(re.findall(r"^\| `--([\w-]+)` \(`([A-Z_]+)`\)", README, flags=re.MULTILINE))

    assert documented == {(s.flag, s.env) for s in main.SETTINGS}


def test_relative_links_point_to_files_that_exist():
    links = re.findall(r"\]\(((?!https?://|#)[^)]+)\)", README)

    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []
