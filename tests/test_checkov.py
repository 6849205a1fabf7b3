"""checkov, the scanner users run on manifests, finds nothing to flag in a FlaskBackend.

checkov lives in its own venv (.venv-checkov, installed by `make test`; it pins packages pytest
cannot use). It runs once per session, offline, on a directory holding the synthesized backends
of tests/scanned.py. Settings are in .checkov.yaml.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.scanned import write_backends
from tests.support import ROOT, unavailable

# Absolute: `make test` passes a relative path, and checkov runs from the manifests' directory.
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov")).absolute()


def offline_env() -> dict[str, str]:
    """The environment minus anything that would point checkov at Prisma Cloud, plus the switches
    that keep it from calling home (policy metadata, guideline mapping, PyPI update check)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    return env | {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


def write_manifests(directory: Path) -> int:
    """Write the scanned backends, one file each; return how many resources checkov should see:
    every object, plus the pod template of each Deployment and Job, which it also scans as a Pod."""
    return sum(
        len(documents) + sum(d["kind"] in ("Deployment", "Job") for d in documents)
        for documents in write_backends(directory).values()
    )


@pytest.fixture(scope="module")
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], int]:
    """Run checkov once for the module; return its JSON report and the resources it should see."""
    if not os.access(CHECKOV, os.X_OK):
        unavailable(f"checkov not found at {CHECKOV}: `make test` installs it (.venv-checkov)")
    manifests = tmp_path_factory.mktemp("manifests")
    resources = write_manifests(manifests)
    command = [
        str(CHECKOV),
        "--config-file",
        str(ROOT / ".checkov.yaml"),
        "--directory",
        str(manifests),
        "--output",
        "json",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=manifests,
        timeout=300,
        check=False,
    )
    print(f"checkov took {time.monotonic() - started:.1f} s")
    # Exit code 1 means failed checks, which the tests report in detail; others mean a crash.
    assert result.returncode in (0, 1), f"checkov crashed:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    # One framework gives one report; several would give a list.
    (kubernetes,) = report if isinstance(report, list) else [report]
    assert kubernetes["check_type"] == "kubernetes"
    return kubernetes, resources


def describe(failed: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['check_id']} {c['check_name']}\n    {c['resource']} in {Path(c['file_path']).name}"
        + (f"\n    {c['guideline']}" if c.get("guideline") else "")
        for c in failed
    )


def test_checkov_flags_nothing(checkov_run: tuple[dict[str, Any], int]) -> None:
    report, _ = checkov_run

    failed = report["results"]["failed_checks"]

    assert failed == [], f"checkov flagged {len(failed)} checks:\n{describe(failed)}"


def test_checkov_scanned_every_object(checkov_run: tuple[dict[str, Any], int]) -> None:
    # Guards the test above: zero failures must not mean zero checks.
    report, resources = checkov_run

    summary = report["summary"]

    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == resources
    assert summary["passed"] >= 10 * resources


def test_checkov_skips_only_the_cpu_limit_check_of_the_backend_without_one(
    checkov_run: tuple[dict[str, Any], int],
) -> None:
    report, _ = checkov_run

    skipped = report["results"]["skipped_checks"]

    assert sorted(
        (c["check_id"], c["resource"].rpartition("-migrate-")[0] or c["resource"]) for c in skipped
    ) == [
        ("CKV_K8S_11", "Deployment.backend.platform"),
        ("CKV_K8S_11", "Job.backend.platform"),
    ]
    assert "cpu_limit_millicores" in skipped[0]["check_result"]["suppress_comment"]
