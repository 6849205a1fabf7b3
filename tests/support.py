"""Helpers the tests share: synthesize charts in-process and judge the output with real tools."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cdk8s
import kubernetes_validate
import yaml

import main

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.27"
# Native sidecars (restartPolicy on an init container) are on by default from this version.
NATIVE_SIDECARS_K8S_VERSION = "1.29"

# Fixed fake values: snapshots and tests must never hold a real secret.
FAKE_SECRETS = {
    "SECRET_KEY": "fake-secret-key-for-tests-not-a-real-one",
    "DATABASE_URL": "postgresql://fake",
}


def synth(build: Callable[[cdk8s.Chart], Any], *, namespace: str | None = "backend") -> list[dict]:
    """Build one chart with `build` and return its objects as plain dicts, in document order."""
    app = cdk8s.App()
    chart = cdk8s.Chart(app, "test", namespace=namespace, disable_resource_name_hashes=True)
    build(chart)
    return [d for d in yaml.safe_load_all(app.synth_yaml()) if d]


def by_kind(documents: list[dict], kind: str) -> dict:
    (found,) = (d for d in documents if d["kind"] == kind)
    return found


def validate_strict(documents: list[dict], version: str = K8S_VERSION) -> None:
    """Validate every object against the official Kubernetes schema (1.27 unless told), strict
    mode; Gateway API objects against their CRD's schema (validate_custom)."""
    for document in documents:
        if document["apiVersion"].startswith("gateway.networking.k8s.io/"):
            validate_custom(document)
        else:
            kubernetes_validate.validate(document, version, strict=True)


def crd_dir() -> Path:
    """The CRDs `make control-plane` copied from their pinned Go modules (tools/crds)."""
    from tests.cluster.controlplane import binaries_dir

    found = binaries_dir()
    if found is None:
        import pytest

        message = "the Gateway API CRDs are not here: run `make control-plane` (tools/crds)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found.parent / "crds"


def validate_custom(document: dict) -> None:
    """Validate a custom resource against the openAPIV3Schema of its CRD's served version,
    strictly: an unknown field fails, as kubernetes-validate's strict mode does (the API server
    would silently prune it)."""
    import jsonschema

    group, _, version = document["apiVersion"].rpartition("/")
    plural = document["kind"].lower() + "s"
    with (crd_dir() / f"{group}_{plural}.yaml").open(encoding="utf-8") as stream:
        crd = yaml.safe_load(stream)
    (served,) = (v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = _closed(served["schema"]["openAPIV3Schema"])
    # metadata is the API server's ObjectMeta, not described by the CRD.
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def _closed(schema: Any) -> Any:
    """The schema with additionalProperties: false wherever properties are listed."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


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
