"""`kubectl apply -f dist` against a real control plane: the API server's own validation, Pod
Security admission judging real Pods, server-side apply, and what the controllers do with our
objects. Each test works in a namespace of its own, except the seed's commands, which run
verbatim on the `backend` namespace of an empty cluster (this module runs first)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.support import FAKE_SECRETS, KUBERNETES, ROOT, clean_env
from tests.test_examples import EXAMPLES, run_example_script
from tests.test_readme import PYTHON_BLOCKS, README, run_block

SEED = next((ROOT.parent / "shared" / "seeds").glob("*.txt"), None)
# The README's "Deploy and verify" block, which must be the seed's commands.
DEPLOY_BLOCK = re.search(r"## Deploy and verify.*?```sh\n(.*?)```", README, re.DOTALL)
SEED_COMMANDS = [
    "kubectl get ns backend || kubectl create ns backend",
    "kubectl apply -f dist",
    "kubectl get pods -n backend",
    "kubectl get svc -n backend",
]
CONTROLLER_DEADLINE_SECONDS = 30
CREATED_IMPERATIVELY = "Warning: resource namespaces/backend is missing the "
LAST_APPLIED_NOTE = (
    "kubectl.kubernetes.io/last-applied-configuration annotation which is required by kubectl "
    "apply. kubectl apply should only be used on resources created declaratively by either "
    "kubectl create --save-config or kubectl apply. The missing annotation will be patched "
    "automatically."
)


def synth(outdir: Path, **settings: str) -> Path:
    """`python main.py` as a user runs it, into outdir."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        env=clean_env(CDK8S_OUTDIR=str(outdir), **FAKE_SECRETS, **settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return outdir


def shell(plane: ControlPlane, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=plane.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a kubectl call that must succeed without a single warning."""
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr + result.stdout, result.stderr
    return result.stdout


def get(plane: ControlPlane, *args: str) -> Any:
    return json.loads(ok(plane.kubectl("get", *args, "-o", "json")))


def eventually(check: Callable[[], Any], what: str) -> Any:
    """check()'s first truthy result, polled until the controllers have had their time."""
    deadline = time.monotonic() + CONTROLLER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {CONTROLLER_DEADLINE_SECONDS} s: {what}")


def pods(plane: ControlPlane, namespace: str, instance: str = "flask-api") -> list[dict]:
    """The app's pods (the migration Job's pods are another instance of the same app)."""
    selector = f"app.kubernetes.io/instance={instance}"
    return get(plane, "pods", "-n", namespace, "-l", selector)["items"]


def replica_sets(plane: ControlPlane, namespace: str, name: str = "flask-api") -> list[dict]:
    selector = f"app.kubernetes.io/instance={name}"
    return get(plane, "replicasets", "-n", namespace, "-l", selector)["items"]


# -- 1-4: the seed's commands on an empty cluster, and what follows ---------------------------


@pytest.fixture(scope="module")
def seed_run(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory):
    """The seed's verify steps, verbatim, in a folder holding `dist/` from `python main.py`."""
    workdir = tmp_path_factory.mktemp("seed")
    synth(workdir / "dist")
    return workdir, [shell(control_plane, command, workdir) for command in SEED_COMMANDS]


def test_the_readme_deploy_steps_are_the_seed_commands():
    assert DEPLOY_BLOCK is not None
    commands = [line.split("#")[0].strip() for line in DEPLOY_BLOCK.group(1).splitlines()]
    assert [c for c in commands if c] == SEED_COMMANDS


@pytest.mark.skipif(SEED is None, reason="../shared/seeds is not beside this checkout")
def test_the_seed_commands_are_the_seed_documents():
    assert SEED is not None
    text = SEED.read_text(encoding="utf-8")
    for command in SEED_COMMANDS:
        assert command.replace("dist", ".") in text


def test_seed_commands_pass_in_one_pass_without_warnings(seed_run):
    _, results = seed_run

    for command, result in zip(SEED_COMMANDS, results, strict=True):
        assert result.returncode == 0, f"{command}: {result.stderr}"
        warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
        if command == "kubectl apply -f dist":
            # kubectl's own note that the seed's `kubectl create ns` made the Namespace without
            # --save-config (it adds the annotation itself). The only one allowed: no warning
            # from the API server (Pod Security) and none about any object we wrote.
            assert [w for w in warnings if not w.startswith(CREATED_IMPERATIVELY)] == []
        else:
            assert warnings == [], f"{command}: {result.stderr}"


def test_seed_apply_warns_only_about_the_namespace_the_seed_created(seed_run):
    _, results = seed_run

    notes = [line for line in results[1].stderr.splitlines() if "Warning" in line]

    # The README tells users they may skip `kubectl create ns`; then there is no note at all
    # (test_apply_creates_the_namespace_when_it_was_not_created_first).
    assert notes == [f"{CREATED_IMPERATIVELY}{LAST_APPLIED_NOTE}"]


def test_seed_get_svc_lists_the_service_on_port_80(seed_run):
    _, results = seed_run

    assert re.search(r"^flask-api\s+ClusterIP\s+\S+\s+\S+\s+80/TCP", results[3].stdout, re.M)


def test_apply_creates_the_namespace_when_it_was_not_created_first(control_plane, tmp_path):
    dist = synth(tmp_path / "dist", NAMESPACE="not-created-first")

    ok(control_plane.kubectl("apply", "-f", str(dist)))

    namespace = get(control_plane, "namespace", "not-created-first")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    eventually(lambda: len(pods(control_plane, "not-created-first")) == 2, "two admitted pods")


def test_controllers_create_one_replica_set_and_two_admitted_pods(control_plane, seed_run):
    eventually(lambda: len(pods(control_plane, "backend")) == 2, "two pods in backend")

    assert len(replica_sets(control_plane, "backend")) == 1
    for pod in pods(control_plane, "backend"):
        # No kubelet and no scheduler: admitted (Pod Security included) and waiting for a node.
        assert pod["status"]["phase"] == "Pending"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_migration_job_runs_a_pod_admitted_under_restricted(control_plane, seed_run):
    (job,) = get(control_plane, "jobs", "-n", "backend")["items"]
    instance = job["metadata"]["name"]

    (pod,) = eventually(lambda: pods(control_plane, "backend", instance), "the Job's pod")

    assert pod["spec"]["containers"][0]["name"] == "migrate"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_app_pods_wait_for_the_migrations_in_an_init_container(control_plane, seed_run):
    created = eventually(lambda: pods(control_plane, "backend"), "the app's pods")

    assert [c["name"] for c in created[0]["spec"]["initContainers"]] == ["wait-for-migrations"]


def test_the_service_gets_an_endpoint_slice(control_plane, seed_run):
    slices = eventually(
        lambda: get(
            control_plane,
            "endpointslices",
            "-n",
            "backend",
            "-l",
            "kubernetes.io/service-name=flask-api",
        )["items"],
        "an EndpointSlice for flask-api",
    )

    (owner,) = slices[0]["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Service", "flask-api")
    # Pending pods have no IP yet: the slice exists and lists none of them (no kubelet).
    assert not slices[0].get("endpoints")


def test_pod_security_rejects_a_root_pod_in_backend(control_plane, seed_run):
    root_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "runs-as-root", "namespace": "backend"},
        "spec": {
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "shell", "image": "busybox:1.36"}],
        },
    }

    result = control_plane.kubectl("apply", "-f", "-", input=json.dumps(root_pod))

    assert result.returncode != 0
    assert f'violates PodSecurity "restricted:v{KUBERNETES["oldest"]}"' in result.stderr


def test_a_second_apply_changes_nothing(control_plane, seed_run):
    workdir, _ = seed_run
    kinds = ("deployment", "poddisruptionbudget", "secret")
    before = {kind: get(control_plane, kind, "-n", "backend")["items"] for kind in kinds}

    applied = ok(shell(control_plane, "kubectl apply -f dist", workdir))
    diff = shell(control_plane, "kubectl diff -f dist", workdir)

    assert diff.returncode == 0, diff.stdout + diff.stderr
    # kubectl always sends a PodDisruptionBudget's selector again (policy/v1 marks it
    # patchStrategy "replace") and so says "configured"; the server stores nothing new.
    changed = [line for line in applied.splitlines() if not line.endswith(" unchanged")]
    assert changed == ["poddisruptionbudget.policy/flask-api configured"]
    after = {kind: get(control_plane, kind, "-n", "backend")["items"] for kind in kinds}
    for kind in kinds:
        versions = [[o["metadata"]["resourceVersion"] for o in s[kind]] for s in (before, after)]
        assert versions[0] == versions[1], kind
    generations = [s["deployment"][0]["metadata"]["generation"] for s in (before, after)]
    assert generations[0] == generations[1]


# -- 5: an upgrade ------------------------------------------------------------------------------


def test_upgrade_rolls_a_new_replica_set_under_the_same_selector(control_plane, tmp_path):
    namespace = "upgrade"
    dist = synth(tmp_path / "dist", NAMESPACE=namespace)
    ok(control_plane.kubectl("apply", "-f", str(dist)))
    eventually(lambda: replica_sets(control_plane, namespace), "the first ReplicaSet")
    before = get(control_plane, "deployment", "flask-api", "-n", namespace)

    synth(
        tmp_path / "dist",
        NAMESPACE=namespace,
        IMAGE="registry.example.com/api:0.2.0",
        LOG_LEVEL="debug",
    )
    ok(control_plane.kubectl("apply", "-f", str(dist)))

    after = get(control_plane, "deployment", "flask-api", "-n", namespace)
    assert after["spec"]["selector"] == before["spec"]["selector"]
    annotations = [d["spec"]["template"]["metadata"]["annotations"] for d in (before, after)]
    assert annotations[0]["checksum/config"] != annotations[1]["checksum/config"]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"].endswith("api:0.2.0")
    eventually(lambda: len(replica_sets(control_plane, namespace)) == 2, "a second ReplicaSet")


# -- 6: server-side apply -----------------------------------------------------------------------


def test_server_side_apply_on_an_empty_namespace(control_plane, tmp_path):
    dist = synth(tmp_path / "dist", NAMESPACE="server-side")

    ok(control_plane.kubectl("apply", "--server-side", "-f", str(dist)))

    eventually(lambda: len(pods(control_plane, "server-side")) == 2, "two pods")
    assert control_plane.kubectl("diff", "--server-side", "-f", str(dist)).returncode == 0


def test_server_side_apply_takes_over_a_client_side_apply(control_plane, tmp_path):
    dist = synth(tmp_path / "dist", NAMESPACE="client-then-server")
    ok(control_plane.kubectl("apply", "-f", str(dist)))

    ok(control_plane.kubectl("apply", "--server-side", "-f", str(dist)))

    diff = control_plane.kubectl("diff", "--server-side", "-f", str(dist))
    assert diff.returncode == 0, diff.stdout + diff.stderr


# -- 7: every example and README chart, autoscaling, an existing Secret ------------------------


@pytest.mark.parametrize("example", [p.stem for p in EXAMPLES])
def test_example_applies_cleanly(control_plane, tmp_path, example):
    outdir = tmp_path / "out"
    result = run_example_script(example, outdir)
    assert result.returncode == 0, result.stderr

    ok(control_plane.kubectl("apply", "-f", str(outdir)))


@pytest.mark.parametrize(
    ("line", "block"), PYTHON_BLOCKS, ids=[f"README.md:{line}" for line, _ in PYTHON_BLOCKS]
)
def test_readme_chart_applies_cleanly(control_plane, tmp_path, line, block):
    outdir = tmp_path / "dist"
    result = run_block(line, block, tmp_path, outdir)
    assert result.returncode == 0, result.stderr
    # A chart is the user's: its namespace may be one the user creates, as the README says.
    for file in outdir.glob("*.yaml"):
        for namespace in set(re.findall(r"^  namespace: (\S+)$", file.read_text(), re.M)):
            if control_plane.kubectl("get", "namespace", namespace).returncode != 0:
                ok(control_plane.kubectl("create", "namespace", namespace, "--save-config"))

    ok(control_plane.kubectl("apply", "-f", str(outdir)))


def test_autoscaled_deployment_leaves_replicas_to_the_autoscaler(control_plane, tmp_path):
    namespace = "autoscaled"
    dist = synth(tmp_path / "dist", NAMESPACE=namespace, MAX_REPLICAS="6")
    ok(control_plane.kubectl("apply", "-f", str(dist)))
    hpa = get(control_plane, "hpa", "flask-api", "-n", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)

    # What the autoscaler does, then what a redeploy does: the apply must not scale back.
    ok(control_plane.kubectl("scale", "deployment", "flask-api", "-n", namespace, "--replicas=5"))
    ok(control_plane.kubectl("apply", "-f", str(dist)))

    deployment = get(control_plane, "deployment", "flask-api", "-n", namespace)
    assert deployment["spec"]["replicas"] == 5


def test_existing_secret_output_applies_once_the_secret_exists(control_plane, tmp_path):
    namespace = "existing-secret"
    dist = synth(tmp_path / "dist", NAMESPACE=namespace, EXISTING_SECRET="api-credentials")
    assert "kind: Secret" not in "".join(f.read_text() for f in dist.glob("*.yaml"))
    # --save-config: `kubectl apply` of dist/'s Namespace then has nothing to note.
    ok(control_plane.kubectl("create", "namespace", namespace, "--save-config"))
    # Made elsewhere (kubectl, Sealed Secrets, External Secrets); a fake value here.
    ok(
        control_plane.kubectl(
            "create",
            "secret",
            "generic",
            "api-credentials",
            "-n",
            namespace,
            "--from-literal=SECRET_KEY=fake-secret-key-for-tests",
        )
    )

    ok(control_plane.kubectl("apply", "-f", str(dist)))

    created = eventually(lambda: pods(control_plane, namespace), "pods")
    volumes = {v["name"]: v for v in created[0]["spec"]["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "api-credentials"
