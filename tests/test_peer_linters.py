"""The Kubernetes community's own manifest checkers find nothing in any output we synthesize.

- kube-score (github.com/zegl/kube-score) grades objects against production practice, with
  its defaults: a check that an option fails is skipped by the `kube-score/ignore` annotation
  the construct writes on that object, with the reason beside it (flask_backend.exemptions).
- kubectl-validate (sigs.k8s.io/kubectl-validate) validates each object as the API server
  would, strictly (unknown and duplicate fields, types, the schemas' CEL rules), against the
  schemas of one Kubernetes version: here, of every minor the project supports
  (tools/kubernetes.toml), custom resources against their pinned CRDs (tools/crds).

Both are built from their pinned Go modules by `make linters` (scripts/build-linters, run by
`make test`). They judge every output: dist/ as `python main.py` writes it, the output of each
script in examples/, the backends of tests/scanned.py (every option), and backends choosing
every opt-out that kube-score flags (OPT_OUTS).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml

from flask_backend import (
    Autoscaling,
    ExtraContainer,
    FlaskBackend,
    Migrations,
    NetworkPolicyOptions,
    Probes,
    Resources,
    Scheduling,
)
from flask_backend.exemptions import KUBE_SCORE_IGNORE, KUBE_SCORE_REASON
from tests.scanned import write_backends
from tests.support import (
    FAKE_SECRETS,
    IMAGE,
    KUBERNETES,
    ROOT,
    built_dir,
    clean_env,
    crd_dir,
    unavailable,
)
from tests.test_examples import EXAMPLES, run_example_script

OUTPUTS = ("dist", *(p.stem for p in EXAMPLES), "backends", "opt_outs")
# Every option that a kube-score check flags, so each exemption the construct writes is judged.
OPT_OUTS: dict[str, Callable[[cdk8s.Chart], Any]] = {
    "single": lambda chart: FlaskBackend(
        chart,
        "single",
        image="registry.example.com/team/api:latest",
        allow_latest_tag=True,
        secrets=FAKE_SECRETS,
        replicas=1,
        image_pull_policy="IfNotPresent",
        resources=Resources(cpu_limit_millicores=None),
        probes=Probes.one_path("/healthz"),
        network_policy=None,
        migrations=Migrations(),
    ),
    "elastic": lambda chart: FlaskBackend(
        chart,
        "elastic",
        image=IMAGE,
        secrets=FAKE_SECRETS,
        autoscaling=Autoscaling(min_replicas=1),
        scheduling=Scheduling(spread=False),
        image_pull_policy="Never",
        migrations=Migrations(),
    ),
    "unspread": lambda chart: FlaskBackend(
        chart,
        "unspread",
        image=IMAGE,
        secrets=FAKE_SECRETS,
        scheduling=Scheduling(spread=False),
        network_policy=NetworkPolicyOptions(egress=()),
        sidecars=(ExtraContainer("proxy", "registry.example.com/team/proxy:latest"),),
        allow_latest_tag=True,
    ),
}
# The kinds kube-score grades (it passes over Namespaces, ConfigMaps, Secrets, ServiceAccounts
# and custom resources).
SCORED_KINDS = {
    "Deployment",
    "Job",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
    "Ingress",
}


def minor_versions() -> list[str]:
    """Every minor version from tools/kubernetes.toml's oldest to its newest."""
    (major, oldest), (_, newest) = (
        map(int, KUBERNETES[end].split(".")) for end in ("oldest", "newest")
    )
    return [f"{major}.{minor}" for minor in range(oldest, newest + 1)]


@pytest.fixture(scope="module")
def linters() -> Path:
    """The folder `make linters` built (bin/, schemas/<minor>/)."""
    found = built_dir(ROOT / "scripts" / "build-linters")
    if found is None:
        unavailable("kube-score and kubectl-validate are not built: run `make linters`")
    return found


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each output in a folder of its own, by name (OUTPUTS)."""
    root = tmp_path_factory.mktemp("outputs")
    folders = {name: root / name for name in OUTPUTS}
    main = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        cwd=root,
        env=clean_env(**FAKE_SECRETS, CDK8S_OUTDIR=str(folders["dist"])),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert main.returncode == 0, main.stderr
    for example in EXAMPLES:
        result = run_example_script(example.stem, folders[example.stem])
        assert result.returncode == 0, result.stderr
    folders["backends"].mkdir()
    write_backends(folders["backends"])
    folders["opt_outs"].mkdir()
    write_backends(folders["opt_outs"], OPT_OUTS)
    return folders


def manifests(folder: Path) -> list[str]:
    found = sorted(str(p) for p in folder.glob("*.yaml"))
    assert found, f"no manifests in {folder}"
    return found


def run_linter(command: list[str], env: dict[str, str] | None = None) -> Any:
    """A linter's JSON report. Exit code 1 means findings, which the tests report in detail;
    any other failure is a crash."""
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode in (0, 1), f"{Path(command[0]).name} failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


# --- kube-score ------------------------------------------------------------------------------


def kube_score(linters: Path, folder: Path, *, annotations: bool = True) -> list[dict[str, Any]]:
    """kube-score's JSON report on every manifest of folder, read together (some checks match
    objects to each other: a Service to its pods, a PodDisruptionBudget to its Deployment), with
    its default checks, heeding the objects' `kube-score/ignore` annotations unless told not to."""
    return run_linter(
        [
            str(linters / "bin" / "kube-score"),
            "score",
            "--output-format=json",
            f"--kubernetes-version=v{KUBERNETES['oldest']}",
            *([] if annotations else ["--disable-ignore-checks-annotations"]),
            *manifests(folder),
        ]
    )


def below_full_marks(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks of one object in kube-score's report that it flags (warnings too)."""
    return [c for c in item["checks"] if not c["skipped"] and c["grade"] < 10]


def findings(report: list[dict[str, Any]]) -> list[str]:
    """Every check below full marks, one readable line each."""
    return [
        f"{item['object_name']}: {check['check']['id']} "
        f"(grade {check['grade']}): "
        + "; ".join(f"{c['path']} {c['summary']}".strip() for c in check["comments"] or ())
        for item in report
        for check in below_full_marks(item)
    ]


def flagged_checks(report: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Object name -> the IDs of its checks below full marks."""
    return {
        item["object_name"]: {check["check"]["id"] for check in below_full_marks(item)}
        for item in report
    }


def scored_objects(folder: Path) -> dict[str, dict[str, Any]]:
    """The objects of folder that kube-score grades, by the name its report gives them."""
    found = {}
    for file in manifests(folder):
        for d in yaml.safe_load_all(Path(file).read_text(encoding="utf-8")):
            if d and d["kind"] in SCORED_KINDS:
                metadata = d["metadata"]
                namespace = metadata.get("namespace", "")
                found[f"{d['kind']}/{d['apiVersion']}/{namespace}/{metadata['name']}"] = d
    return found


def exemptions(folder: Path) -> dict[str, dict[str, str]]:
    """Object name (as kube-score names it) -> the checks its annotations skip, with reasons."""
    found = {}
    for name, d in scored_objects(folder).items():
        annotations = d["metadata"].get("annotations", {})
        checks = annotations.get(KUBE_SCORE_IGNORE, "")
        found[name] = {
            check: annotations.get(KUBE_SCORE_REASON + check, "")
            for check in checks.split(",")
            if check
        }
    return found


@pytest.mark.parametrize("output", OUTPUTS)
def test_kube_score_flags_nothing(linters: Path, outputs: dict[str, Path], output: str) -> None:
    report = kube_score(linters, outputs[output])

    flagged = findings(report)

    assert flagged == [], f"kube-score flagged {len(flagged)} checks:\n" + "\n".join(flagged)


def test_kube_score_graded_every_object(linters: Path, outputs: dict[str, Path]) -> None:
    # Guards the test above: no findings must not mean no objects or no checks.
    for output in OUTPUTS:
        expected = set(scored_objects(outputs[output]))

        report = kube_score(linters, outputs[output])

        assert {item["object_name"] for item in report} == expected, output
        assert sum(not c["skipped"] for item in report for c in item["checks"]) >= 5 * len(report)


@pytest.mark.parametrize("output", OUTPUTS)
def test_each_kube_score_exemption_is_needed_and_hides_nothing_else(
    linters: Path, outputs: dict[str, Path], output: str
) -> None:
    # Without the annotations, kube-score flags on each object exactly the checks its
    # annotation skips: none is stale, and none hides another check (kube-score skips
    # container-ephemeral-storage-request-and-limit too where container-resources is ignored).
    report = kube_score(linters, outputs[output], annotations=False)

    flagged = flagged_checks(report)

    assert flagged == {name: set(c) for name, c in exemptions(outputs[output]).items()}


def test_every_kube_score_exemption_the_construct_writes_is_judged(
    outputs: dict[str, Path],
) -> None:
    # Guards the test above: each exemption appears in some output, on the kinds it concerns.
    written = {
        (name.split("/")[0], check)
        for output in OUTPUTS
        for name, checks in exemptions(outputs[output]).items()
        for check in checks
    }

    pod_checks = {
        "container-image-pull-policy",
        "container-resources",
        "container-image-tag",
        "pod-networkpolicy",
    }
    assert written == {
        *((kind, check) for kind in ("Deployment", "Job") for check in pod_checks),
        ("Deployment", "deployment-replicas"),
        ("Deployment", "deployment-has-poddisruptionbudget"),
        ("Deployment", "deployment-has-host-podantiaffinity"),
        ("Deployment", "pod-probes-identical"),
        ("HorizontalPodAutoscaler", "horizontalpodautoscaler-replicas"),
    }


def test_each_kube_score_exemption_exists_and_has_a_reason(
    linters: Path, outputs: dict[str, Path]
) -> None:
    listed = subprocess.run(
        [str(linters / "bin" / "kube-score"), "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    checks = {line.split(",")[0] for line in listed.splitlines()}

    for output in OUTPUTS:
        for name, exempted in exemptions(outputs[output]).items():
            for check, reason in exempted.items():
                assert check in checks, (name, check)
                assert " by choice (" in reason or "the default)" in reason, (name, reason)
                assert len(reason.split()) >= 5, (name, check)


# --- kubectl-validate, for every supported minor version -------------------------------------


def kubectl_validate(linters: Path, folder: Path, minor: str) -> dict[str, list[dict]]:
    """kubectl-validate's JSON report (file -> one status per object) against minor's schemas:
    the ones it embeds, or the release's own documents (tools/kubernetes.toml)."""
    if minor in KUBERNETES["kubectl-validate"]["embedded"]:
        schemas = ["--version", minor]
    else:
        schemas = ["--version", "", "--local-schemas", str(linters / "schemas" / minor)]
    # No kubeconfig: else it would ask whichever cluster that names for its schemas.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env |= {"KUBECONFIG": str(folder / "no-kubeconfig"), "HOME": str(folder)}
    return run_linter(
        [
            str(linters / "bin" / "kubectl-validate"),
            *manifests(folder),
            "--output=json",
            f"--local-crds={crd_dir()}",
            *schemas,
        ],
        env,
    )


@pytest.mark.parametrize("minor", minor_versions())
@pytest.mark.parametrize("output", OUTPUTS)
def test_output_is_valid_on_every_supported_kubernetes(
    linters: Path, outputs: dict[str, Path], output: str, minor: str
) -> None:
    report = kubectl_validate(linters, outputs[output], minor)

    invalid = [
        f"{Path(file).name}: {status.get('message')} {status.get('details', '')}"
        for file, statuses in report.items()
        for status in statuses
        if status["status"] != "Success"
    ]

    assert invalid == [], "\n".join(invalid)
    assert sum(len(statuses) for statuses in report.values()) >= 5


def test_kubectl_validate_has_schemas_for_every_supported_minor(linters: Path) -> None:
    sources = KUBERNETES["kubectl-validate"]
    embedded, fetched = set(sources["embedded"]), set(sources["kubernetes-module"])

    assert embedded | fetched == set(minor_versions())
    assert not embedded & fetched
    for minor in fetched:
        assert (linters / "schemas" / minor / "apis" / "apps" / "v1.json").is_file(), minor


def test_kubectl_validate_refuses_an_unknown_field(linters: Path, tmp_path: Path) -> None:
    # Guards the tests above: strict means strict, on an embedded and a fetched schema alike.
    (tmp_path / "typo.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "typo"},
                "data": {"a": "b"},
                "datta": {"a": "b"},
            }
        ),
        encoding="utf-8",
    )

    for minor in (KUBERNETES["oldest"], KUBERNETES["newest"]):
        report = kubectl_validate(linters, tmp_path, minor)

        ((status,),) = report.values()
        assert status["status"] == "Failure", minor
        assert "datta" in json.dumps(status), minor


def test_the_newest_supported_minor_is_the_control_plane_the_tests_run() -> None:
    go_mod = (ROOT / "tools" / "controlplane" / "go.mod").read_text(encoding="utf-8")
    (version,) = re.findall(r"^\s*k8s\.io/kubernetes (v1\.\d+\.\d+)$", go_mod, re.MULTILINE)

    assert version.removeprefix("v").rpartition(".")[0] == KUBERNETES["newest"]
    assert KUBERNETES["kubectl-validate"]["kubernetes-module"][KUBERNETES["newest"]] == version


def test_the_readme_states_the_supported_range() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert f"Supported: **Kubernetes {KUBERNETES['oldest']} to {KUBERNETES['newest']}**" in readme
