"""examples/: every script runs as a user would run it, and its output is valid Kubernetes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import ROOT, clean_env, load_dir, validate_strict

EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
Objects = dict[tuple[str, str, str | None], dict]  # (kind, name, namespace) -> object


def run_example_script(name: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    """examples/<name>.py as a user runs it, writing to outdir."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py")],
        env=clean_env(CDK8S_OUTDIR=str(outdir)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def run_example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Objects]:
    """Run examples/<name>.py once per module with CDK8S_OUTDIR in a temporary directory."""
    results: dict[str, Objects] = {}

    def run(name: str) -> Objects:
        if name not in results:
            outdir = tmp_path_factory.mktemp(name) / "out"
            result = run_example_script(name, outdir)
            assert result.returncode == 0, result.stderr
            results[name] = {
                (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d
                for _, documents in load_dir(outdir)
                for d in documents
            }
        return results[name]

    return run


def test_there_are_examples():
    assert {p.stem for p in EXAMPLES} >= {"two_backends", "three_tier"}


@pytest.mark.parametrize("example", [p.stem for p in EXAMPLES])
def test_example_output_is_valid_kubernetes(run_example, example):
    objects = run_example(example)

    assert objects
    validate_strict(list(objects.values()))


def test_two_backends_admin_api_has_one_pod_no_budget_and_admits_only_ops(run_example):
    objects = run_example("two_backends")

    assert objects["Deployment", "admin-api", "apis"]["spec"]["replicas"] == 1
    assert ("PodDisruptionBudget", "admin-api", "apis") not in objects
    ingress, scrapers = objects["NetworkPolicy", "admin-api", "apis"]["spec"]["ingress"]
    assert scrapers["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    ]


def test_two_backends_public_api_autoscales_from_2_to_10(run_example):
    objects = run_example("two_backends")

    spec = objects["HorizontalPodAutoscaler", "public-api", "apis"]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    assert "replicas" not in objects["Deployment", "public-api", "apis"]["spec"]
    assert ("PodDisruptionBudget", "public-api", "apis") in objects


def test_three_tier_frontend_is_given_the_backend_service_dns_name(run_example):
    objects = run_example("three_tier")

    (container,) = objects["Deployment", "web", "frontend"]["spec"]["template"]["spec"][
        "containers"
    ]
    backend_port = objects["Service", "api", "backend"]["spec"]["ports"][0]["port"]
    assert {
        "name": "BACKEND_URL",
        "value": f"http://api.backend.svc.cluster.local:{backend_port}",
    } in (container["env"])


def test_three_tier_backend_mounts_the_existing_secret_and_emits_none(run_example):
    objects = run_example("three_tier")

    assert not [key for key in objects if key[0] == "Secret"]
    volumes = objects["Deployment", "api", "backend"]["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "secrets",
        "secret": {"secretName": "api-credentials", "defaultMode": 0o440},
    } in (volumes)


def test_three_tier_backend_may_reach_the_database_namespace_on_5432(run_example):
    objects = run_example("three_tier")

    egress = objects["NetworkPolicy", "api", "backend"]["spec"]["egress"]
    assert {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "database"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    } in egress


def test_three_tier_namespaces_are_cluster_scoped_and_restricted(run_example):
    objects = run_example("three_tier")

    namespaces = {key[1]: obj for key, obj in objects.items() if key[0] == "Namespace"}
    assert set(namespaces) == {"backend", "frontend"}
    for namespace in namespaces.values():
        assert "namespace" not in namespace["metadata"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_example_outdir_is_private(tmp_path: Path):
    outdir = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_backends.py")],
        env=clean_env(CDK8S_OUTDIR=str(outdir)),
        check=True,
        capture_output=True,
        timeout=120,
    )

    assert outdir.stat().st_mode & 0o777 == 0o700


def test_an_example_given_a_refused_outdir_says_so_in_one_line(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_backends.py")],
        env=clean_env(CDK8S_OUTDIR=str(tmp_path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"two_backends.py: error: refusing to write into {str(tmp_path)!r}: it is the working "
        "directory; choose a new or empty directory (CDK8S_OUTDIR)\n"
    )


def test_three_tier_frontend_admits_only_the_edge_and_reaches_only_dns_and_the_backend(
    run_example,
):
    objects = run_example("three_tier")

    spec = objects["NetworkPolicy", "web", "frontend"]["spec"]
    backend_pods = objects["Deployment", "api", "backend"]["spec"]["selector"]["matchLabels"]
    assert spec["podSelector"] == objects["Deployment", "web", "frontend"]["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    dns, backend = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert backend == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "backend"}},
                "podSelector": {"matchLabels": backend_pods},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8000}],
    }


def test_three_tier_frontend_survives_drains_and_rollouts_like_the_backend(run_example):
    objects = run_example("three_tier")

    deployment = objects["Deployment", "web", "frontend"]
    budget = objects["PodDisruptionBudget", "web", "frontend"]["spec"]
    pod = deployment["spec"]["template"]["spec"]
    assert budget == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert pod["affinity"]["podAntiAffinity"]


def test_three_tier_frontend_bounds_its_disk_and_probes_liveness_apart_from_readiness(
    run_example,
):
    objects = run_example("three_tier")

    (nginx,) = objects["Deployment", "web", "frontend"]["spec"]["template"]["spec"]["containers"]
    assert nginx["resources"]["requests"]["ephemeral-storage"] == "1Gi"
    assert nginx["resources"]["limits"]["ephemeral-storage"] == "1Gi"
    assert nginx["livenessProbe"] != nginx["readinessProbe"]
    assert "tcpSocket" in nginx["livenessProbe"]
    assert nginx["readinessProbe"]["httpGet"]["path"] == "/"
