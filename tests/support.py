"""Helpers the tests share: synthesize charts in-process and judge the output with real tools.

cdk8s, kubernetes-validate and main.py are imported where they are used: importing cdk8s
starts jsii's Node.js process, which the control plane and node modules (and bench/), which
use the helpers below, do not need.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

if TYPE_CHECKING:
    import cdk8s

ROOT = Path(__file__).resolve().parent.parent
with (ROOT / "tools" / "kubernetes.toml").open("rb") as stream:
    KUBERNETES = tomllib.load(stream)  # the supported minors, oldest to newest
# What validate_strict checks every object against: the ends of the supported range. The minors
# between are checked on dist/, the examples and every option (tests/scanned.py) by
# kubectl-validate (tests/test_peer_linters.py); in-process, each minor costs 28 ms an object.
K8S_VERSIONS = (KUBERNETES["oldest"], KUBERNETES["newest"])

# Fixed fake values: snapshots and tests must never hold a real secret.
FAKE_SECRETS = {
    "SECRET_KEY": "fake-secret-key-for-tests-not-a-real-one",
    "DATABASE_URL": "postgresql://fake",
}
# The images the construct's tests deploy: one by tag, one pinned by digest (the snapshots show
# both; the community's scanners judge the pinned one, tests/scanned.py).
IMAGE = "registry.example.com/team/api:1.4.2"
PINNED_IMAGE = (
    "registry.example.com/team/api@sha256:"
    "4f2d3c8a9b1e7f6054d2c3b8a9e1f7d6c5b4a3928170f6e5d4c3b2a1908f7e6d"
)


def synth(build: Callable[[cdk8s.Chart], Any], *, namespace: str | None = "backend") -> list[dict]:
    """Build one chart with `build` and return its objects as plain dicts, in document order."""
    import cdk8s

    app = cdk8s.App()
    chart = cdk8s.Chart(app, "test", namespace=namespace, disable_resource_name_hashes=True)
    build(chart)
    return [d for d in yaml.safe_load_all(app.synth_yaml()) if d]


def by_kind(documents: list[dict], kind: str) -> dict:
    (found,) = (d for d in documents if d["kind"] == kind)
    return found


def validate_strict(documents: list[dict], *versions: str) -> None:
    """Validate every object against the official Kubernetes schemas of `versions` (default:
    K8S_VERSIONS), strict mode; Gateway API objects against their CRD's schema
    (validate_custom)."""
    import kubernetes_validate

    for document in documents:
        if document["apiVersion"].startswith("gateway.networking.k8s.io/"):
            validate_custom(document)
            continue
        for version in versions or K8S_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def unavailable(message: str) -> NoReturn:
    """What a test does when something it needs is not here: under CI=true, where every test
    must run, it fails; elsewhere it skips. `message` says what to run to get it."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def built_dir(script: Path, files: Iterable[str] = (), timeout: float = 60) -> Path | None:
    """The folder a build script (scripts/build-*) names with `--where`, the output for the
    current pins, if it holds every one of `files`; None when it is not built (the script
    never builds with --where)."""
    try:
        result = subprocess.run(
            [str(script), "--where"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except OSError:
        return None
    path = Path(result.stdout.strip())
    if result.returncode != 0 or not all((path / name).is_file() for name in files):
        return None
    return path


def crd_dir() -> Path:
    """The CRDs `make control-plane` copied from their pinned Go modules (tools/crds)."""
    from tests.cluster.controlplane import binaries_dir

    found = binaries_dir()
    if found is None:
        unavailable("the Gateway API CRDs are not here: run `make control-plane` (tools/crds)")
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
    import main

    names = {s.env for s in main.SETTINGS} | set(main.SECRET_KEYS) | {"CDK8S_OUTDIR", "ENV_FILE"}
    return {k: v for k, v in os.environ.items() if k not in names} | extra
