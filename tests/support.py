"""Helpers the tests share: synthesize charts in-process and judge the output with real tools."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

import main

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.27"

# Fixed fake values: snapshots and tests must never hold a real secret.
FAKE_SECRETS = {
    "SECRET_KEY": "fake-secret-key-for-tests-not-a-real-one",
    "DATABASE_URL": "postgresql://fake",
}

main.use_bundled_node()  # before the first cdk8s import: jsii on the supported Node from PyPI

import cdk8s  # noqa: E402


def synth(build: Callable[[cdk8s.Chart], Any], *, namespace: str | None = "backend") -> list[dict]:
    """Build one chart with `build` and return its objects as plain dicts, in document order."""
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "test", namespace=namespace, disable_resource_name_hashes=True)
    build(chart)
    return [d for d in yaml.safe_load_all(app.synth_yaml()) if d]


def by_kind(documents: list[dict], kind: str) -> dict:
    (found,) = (d for d in documents if d["kind"] == kind)
    return found


def validate_strict(documents: list[dict]) -> None:
    """Validate every object against the official Kubernetes 1.27 schema, strict mode."""
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def pod_spec(documents: list[dict]) -> dict:
    return by_kind(documents, "Deployment")["spec"]["template"]["spec"]


def container(documents: list[dict]) -> dict:
    (only,) = pod_spec(documents)["containers"]
    return only


def secret_values(secret: dict) -> dict[str, str]:
    """A Secret's values as the pod sees them (the manifest holds them base64 in `data`)."""
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}


def load_dir(path: Path) -> Iterator[tuple[Path, list[dict]]]:
    for file in sorted(path.glob("*.yaml")):
        with file.open(encoding="utf-8") as stream:
            yield file, [d for d in yaml.safe_load_all(stream) if d]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus every setting main.py reads, plus `extra`."""
    names = {s.env for s in main.SETTINGS} | set(main.SECRET_KEYS) | {"CDK8S_OUTDIR", "ENV_FILE"}
    return {k: v for k, v in os.environ.items() if k not in names} | extra
