"""A release's whole life with plain kubectl on a real control plane (README, "Upgrades and
uninstall"): each test deploys one release after another with the README's commands, run by
bash in a project folder where `python main.py` wrote dist/, and checks what the cluster holds.

Pruning is kubectl's ApplySet (KEP-3659): the deploy command records the release in a parent
Secret, labels every object it applies with the parent's id, and deletes the objects carrying
that label that dist/ no longer lists. After every deploy, the README's diff command is empty.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.cluster.controlplane import ControlPlane
from tests.cluster.test_cluster_apply import eventually, get, ok, pods, replica_sets
from tests.support import FAKE_SECRETS, ROOT, clean_env
from tests.test_readme import DOCUMENTS, README

# The README's commands, for the default tier (namespace backend, backend flask-api); the tests
# run them with their own namespace.
PARENT = "flask-api-release"
CREATE_NAMESPACE = "kubectl get ns {namespace} || kubectl create ns {namespace} --save-config"
DEPLOY = (
    "KUBECTL_APPLYSET=true kubectl apply -n {namespace} --prune --applyset=flask-api-release "
    "-f dist"
)
DIFF = (
    "kubectl label --local -f dist -o json applyset.kubernetes.io/part-of="
    "$(kubectl -n {namespace} get secret flask-api-release "
    "-o jsonpath='{{.metadata.labels.applyset\\.kubernetes\\.io/id}}') | kubectl diff -f -"
)
ROTATE = "sed -i '/^SECRET_KEY=/d' .env"
RESTART = "kubectl -n {namespace} rollout restart deployment/flask-api"
UNINSTALL = (
    "kubectl delete -f dist -l app.kubernetes.io/managed-by=cdk8s && "
    "kubectl -n {namespace} delete secret flask-api-release"
)
UNINSTALL_WITH_NAMESPACE = "kubectl delete -f dist"
SECTION = re.search(r"\n## Upgrades and uninstall\n(.*?)\n## ", README, re.DOTALL)
MEMBER_LABEL = "applyset.kubernetes.io/part-of"
GATEWAY_API_CRDS = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)
SERVICE_MONITOR_CRD = "monitoring.coreos.com_servicemonitors.yaml"


def applyset_id(namespace: str, parent: str = PARENT) -> str:
    """The id kubectl gives a Secret parent (applyset.go: base64url(sha256(name.ns.kind.group)))."""
    digest = hashlib.sha256(f"{parent}.{namespace}.Secret.".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


class Project:
    """A user's project folder: dist/ from `python main.py`, the README's commands run there."""

    def __init__(self, plane: ControlPlane, folder: Path, namespace: str) -> None:
        self.plane = plane
        self.folder = folder
        self.namespace = namespace
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def dist(self) -> Path:
        return self.folder / "dist"

    def synth(self, *, secrets: dict[str, str] | None = FAKE_SECRETS, **settings: str) -> Path:
        """`python main.py` in the folder, as a user runs it (secrets=None: .env's SECRET_KEY)."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "main.py")],
            env=clean_env(NAMESPACE=self.namespace, **(secrets or {}), **settings),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return self.dist

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command.format(namespace=self.namespace)],
            cwd=self.folder,
            env=self.plane.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def deploy(self) -> str:
        """The README's deploy command (namespace first, once), then its diff: empty."""
        ok(self.run(CREATE_NAMESPACE))
        output = ok(self.run(DEPLOY))
        self.assert_no_diff()
        return output

    def assert_no_diff(self) -> None:
        diff = self.run(DIFF)
        assert diff.returncode == 0, diff.stdout + diff.stderr

    def get(self, *args: str) -> Any:
        return get(self.plane, *args, "-n", self.namespace)

    def names(self, kind: str, selector: str | None = None) -> list[str]:
        found = self.get(kind, *(["-l", selector] if selector else []))["items"]
        return sorted(item["metadata"]["name"] for item in found)

    def members(self) -> dict[str, list[str]]:
        """Every object of the kinds a release holds that carries this release's id."""
        selector = f"{MEMBER_LABEL}={applyset_id(self.namespace)}"
        kinds = (
            "configmaps,secrets,serviceaccounts,services,deployments,jobs,"
            "poddisruptionbudgets,networkpolicies,horizontalpodautoscalers,ingresses"
        )
        found = self.get(kinds, "-l", selector)["items"]
        result: dict[str, list[str]] = {}
        for item in found:
            result.setdefault(item["kind"], []).append(item["metadata"]["name"])
        return result


def same_output(actual: str, namespace: str) -> str:
    """kubectl's output as the README shows it: the namespace is `backend` there."""
    return re.sub(rf"\b{re.escape(namespace)}\b", "backend", actual)


def readme_output(after: str) -> str:
    """The text block the README's section shows after `after`."""
    assert SECTION is not None, "README has no '## Upgrades and uninstall' section"
    found = re.search(re.escape(after) + r".*?```text\n(.*?)```", SECTION.group(1), re.DOTALL)
    assert found is not None, f"no output block after {after!r}"
    return found.group(1)


@pytest.fixture
def project(control_plane: ControlPlane, tmp_path: Path, request: pytest.FixtureRequest):
    # One namespace per test, named after it (a DNS label).
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    return Project(control_plane, tmp_path / "project", name[:40].strip("-"))


# -- the README ---------------------------------------------------------------------------------


def test_the_readme_shows_the_commands_the_tests_run():
    assert SECTION is not None
    text = SECTION.group(1)
    for command in (CREATE_NAMESPACE, DEPLOY, DIFF, ROTATE, RESTART, UNINSTALL):
        assert command.format(namespace="backend") in text, command
    assert f"`{UNINSTALL_WITH_NAMESPACE}`" in text
    guide = DOCUMENTS["docs/upgrades.md"]
    for command in (DEPLOY, DIFF, MOVE_CLEANUP):
        assert command.format(namespace="backend") in guide, command
    assert "add `--dry-run=server` to the deploy command" in guide


def test_the_id_is_the_one_kubectl_gives_the_parent(project: Project):
    project.synth()
    project.deploy()

    parent = project.get("secret", PARENT)
    assert parent["metadata"]["labels"] == {
        "applyset.kubernetes.io/id": applyset_id(project.namespace)
    }
    assert "data" not in parent  # the record holds no secret, only what the release holds:
    kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
    assert kinds == (
        "ConfigMap,Deployment.apps,Job.batch,Namespace,NetworkPolicy.networking.k8s.io,"
        "PodDisruptionBudget.policy,Secret,Service,ServiceAccount"
    )


def test_the_diff_command_compares_every_object(project: Project):
    project.synth()
    project.deploy()
    objects = len(
        [d for d in yaml.safe_load_all((project.dist / "backend.k8s.yaml").read_text()) if d]
    )

    plain = project.run("kubectl diff -f dist")
    wrong = project.run(DIFF.replace("part-of=$(", "part-of=x$("))

    # Without the label, every object would lose it (kubectl keeps it in last-applied)...
    assert plain.returncode == 1
    removed = [
        line for line in plain.stdout.splitlines() if line.startswith(f"-    {MEMBER_LABEL}:")
    ]
    assert len(removed) == objects
    # ... and the README's command really compares each one (a YAML stream without `---`
    # between objects would compare one merged object and say nothing).
    assert wrong.returncode == 1
    changed = [
        line for line in wrong.stdout.splitlines() if line.startswith(f"+    {MEMBER_LABEL}: x")
    ]
    assert len(changed) == objects


# -- 1: autoscaling switched off -----------------------------------------------------------------


def test_autoscaling_switched_off_prunes_the_autoscaler(project: Project):
    project.synth(MAX_REPLICAS="4")
    project.deploy()
    assert project.names("hpa") == ["flask-api"]
    # What the autoscaler does; the apply of an autoscaled release leaves it alone.
    ok(
        project.plane.kubectl(
            "scale", "deployment/flask-api", "-n", project.namespace, "--replicas=3"
        )
    )

    project.synth()  # --max-replicas 0: no autoscaler, replicas: 2
    dry_run = ok(project.run(f"{DEPLOY} --dry-run=server"))
    assert "horizontalpodautoscaler.autoscaling/flask-api pruned (server dry run)" in dry_run
    assert project.names("hpa") == ["flask-api"]
    output = project.deploy()

    assert project.names("hpa") == []
    assert project.get("deployment", "flask-api")["spec"]["replicas"] == 2
    assert same_output(output, project.namespace) == readme_output(
        "(`--max-replicas 4`, then without it)"
    )


# -- 2: routing and metrics switched off ---------------------------------------------------------


def test_the_ingress_switched_off_is_pruned(project: Project):
    project.synth(INGRESS_HOST="api.example.com")
    project.deploy()
    assert project.names("ingress") == ["flask-api"]

    project.synth()
    output = project.deploy()

    assert project.names("ingress") == []
    assert "ingress.networking.k8s.io/flask-api pruned" in output.splitlines()


def test_the_http_route_and_service_monitor_switched_off_are_pruned(project: Project):
    project.plane.install_crds(*GATEWAY_API_CRDS, SERVICE_MONITOR_CRD)
    chart = USER_CHART.format(namespace=project.namespace)
    run_chart(project, chart.replace("ROUTED", "True"))
    project.deploy()
    assert project.names("httproute") == ["flask-api"]
    assert project.names("servicemonitor") == ["flask-api"]

    run_chart(project, chart.replace("ROUTED", "False"))
    output = project.deploy()

    assert project.names("httproute") == []
    assert project.names("servicemonitor") == []
    pruned = sorted(line for line in output.splitlines() if line.endswith(" pruned"))
    assert pruned == [
        "httproute.gateway.networking.k8s.io/flask-api pruned",
        "servicemonitor.monitoring.coreos.com/flask-api pruned",
    ]


# A chart of the user's own (README, "Use it in your own chart"), with routing and metrics on or
# off: main.py has no setting for an HTTPRoute or a ServiceMonitor.
USER_CHART = """
import flask_backend
from cdk8s import App, Chart
from flask_backend import FlaskBackend, GatewayRef, HttpRoute, Metrics, RestrictedNamespace

routed = ROUTED
app = App(outdir="dist")
chart = Chart(app, "backend", namespace="{namespace}", disable_resource_name_hashes=True)
RestrictedNamespace(chart)
FlaskBackend(
    chart,
    "flask-api",
    image="registry.example.com/team/api:1.4.2",
    secrets={{"SECRET_KEY": "fake-secret-key-for-tests-not-a-real-one"}},
    http_route=HttpRoute(parent_refs=(GatewayRef("public", namespace="gateways"),))
    if routed
    else None,
    metrics=Metrics(service_monitor=routed),
)
app.synth()
"""


def run_chart(project: Project, chart: str) -> None:
    shutil.rmtree(project.dist, ignore_errors=True)
    script = project.folder / "chart.py"
    script.write_text(chart)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=project.folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# -- 3: a second backend in the namespace ---------------------------------------------------------

# Made by hand, with our labels copied (a person who copied dist/ and renamed the objects): a
# prune that selected by these labels would delete it.
BY_HAND = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: billing-config
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: flask-api
    app.kubernetes.io/instance: flask-api
    app.kubernetes.io/part-of: three-tier-app
    app.kubernetes.io/managed-by: cdk8s
data:
  LOG_LEVEL: info
"""


def not_ours(project: Project) -> dict[str, tuple[str, Any, dict[str, str]]]:
    """Every object in the namespace that is not this release's (ours are all named flask-api*):
    its uid, its generation (a spec change) or, without one, its resourceVersion, its labels."""
    kinds = (
        "configmaps,secrets,serviceaccounts,services,deployments,jobs,poddisruptionbudgets,"
        "networkpolicies,horizontalpodautoscalers,ingresses"
    )
    found = {}
    for item in project.get(kinds)["items"]:
        meta = item["metadata"]
        if not meta["name"].startswith("flask-api"):
            version = meta.get("generation", meta["resourceVersion"])
            found[f"{item['kind']}/{meta['name']}"] = (meta["uid"], version, meta.get("labels"))
    return found


def test_a_second_backend_in_the_namespace_is_never_touched(project: Project, tmp_path: Path):
    project.synth(MAX_REPLICAS="4", INGRESS_HOST="api.example.com")
    project.deploy()
    # Another chart in the same namespace, deployed as the README says, under its own name...
    other = Project(project.plane, tmp_path / "billing", project.namespace)
    other.synth(BACKEND_NAME="billing", MAX_REPLICAS="4", INGRESS_HOST="billing.example.com")
    ok(other.run(DEPLOY.replace("flask-api-release", "billing-release")))
    # ... and objects made by hand: with kubectl create, and with our labels copied.
    ok(project.plane.kubectl("apply", "-f", "-", input=BY_HAND.format(namespace=project.namespace)))
    by_hand = ("create", "deployment", "by-hand", "--image=registry.example.com/x:1")
    # (Pod Security warns about its pod template: a person's, not ours.)
    assert project.plane.kubectl(*by_hand, "-n", project.namespace).returncode == 0
    theirs = not_ours(project)
    assert {"Deployment/billing", "HorizontalPodAutoscaler/billing", "Ingress/billing"} < set(
        theirs
    )
    assert {"ConfigMap/billing-config", "Deployment/by-hand", "Secret/billing-secrets"} < set(
        theirs
    )

    project.synth()  # autoscaling and the Ingress switched off: ours are pruned
    project.deploy()
    assert project.names("hpa") == ["billing"]
    assert project.names("ingress") == ["billing"]
    project.synth(IMAGE="registry.example.com/team/api:2.0.0")  # a new Job: the old one pruned
    project.deploy()
    ok(project.run(UNINSTALL))

    assert not_ours(project) == theirs
    assert project.members() == {}


# -- 4: migration Jobs ----------------------------------------------------------------------------


def migration_jobs(project: Project) -> dict[str, str]:
    selector = "app.kubernetes.io/name=flask-api,app.kubernetes.io/component=migrations"
    found = project.get("jobs", "-l", selector)["items"]
    return {job["metadata"]["name"]: job["metadata"]["uid"] for job in found}


def test_past_migration_jobs_are_pruned_and_the_current_one_stays(project: Project):
    plane, namespace = project.plane, project.namespace
    released = []
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        project.synth(IMAGE=f"registry.example.com/team/api:{version}")
        project.deploy()
        current = migration_jobs(project)
        # One Job at a time: the previous release's was pruned by this deploy.
        assert len(current) == 1, current
        (name,) = current
        assert "ttlSecondsAfterFinished" not in project.get("job", name)["spec"]
        # Its pod runs (Pending: no kubelet here) and the new app pods wait for it in their init
        # container; deploying the same release again keeps the very same Job.
        eventually(lambda name=name: pods(plane, namespace, name), "the Job's pod")
        waiting = eventually(
            lambda version=version: [
                pod
                for pod in pods(plane, namespace)
                if pod["spec"]["containers"][0]["image"].endswith(version)
            ],
            "the new release's pods",
        )
        assert waiting[0]["spec"]["initContainers"][0]["name"] == "wait-for-migrations"
        project.deploy()
        assert migration_jobs(project) == current
        released.append(name)

    # The past releases' Jobs are gone, and their pods with them (the garbage collector).
    for name in released[:-1]:
        eventually(lambda name=name: not pods(plane, namespace, name), f"{name}'s pods gone")


def test_moving_from_plain_apply_deletes_the_older_jobs_once(project: Project):
    # Deployed with the seed's `kubectl apply -f dist` first: no object carries the id yet.
    project.synth(IMAGE="registry.example.com/team/api:1.0.0")
    ok(project.run("kubectl apply -f dist"))
    (first,) = migration_jobs(project)
    project.synth(IMAGE="registry.example.com/team/api:1.1.0")
    project.deploy()
    # The older Job was never in the ApplySet, so the prune leaves it: the README's one-off.
    assert len(migration_jobs(project)) == 2
    assert first in migration_jobs(project)

    ok(project.run(MOVE_CLEANUP))

    (current,) = migration_jobs(project)
    assert current != first
    project.assert_no_diff()


MOVE_CLEANUP = (
    "kubectl -n {namespace} delete jobs -l "
    "'app.kubernetes.io/name=flask-api,app.kubernetes.io/component=migrations,"
    "!applyset.kubernetes.io/part-of'"
)


# -- 5: rollback ----------------------------------------------------------------------------------


def test_rollback_returns_the_previous_release_and_leaves_the_newer_schema_alone(
    project: Project, database_url: str
):
    from tests.app.test_migrate import run_migrate, tables

    project.synth(IMAGE="registry.example.com/team/api:1.0.0")
    previous = (project.dist / "backend.k8s.yaml").read_bytes()
    project.deploy()
    before = project.get("deployment", "flask-api")
    (previous_job,) = migration_jobs(project)
    project.synth(IMAGE="registry.example.com/team/api:1.1.0", LOG_LEVEL="debug")
    project.deploy()
    eventually(lambda: len(replica_sets(project.plane, project.namespace)) == 2, "2 ReplicaSets")

    # The previous release's settings synthesize its dist/ again, byte for byte.
    project.synth(IMAGE="registry.example.com/team/api:1.0.0")
    assert (project.dist / "backend.k8s.yaml").read_bytes() == previous
    output = project.deploy()

    after = project.get("deployment", "flask-api")
    assert after["spec"]["template"] == before["spec"]["template"]
    assert project.get("configmap", "flask-api-config")["data"]["LOG_LEVEL"] == "info"
    # The Deployment goes back to the previous ReplicaSet (no third one)...
    assert len(replica_sets(project.plane, project.namespace)) == 2
    # ... and the previous release's Job is made again (the newer release's is pruned).
    assert list(migration_jobs(project)) == [previous_job]
    assert same_output(output, project.namespace) == readme_output("Roll back")

    # What that Job and the pods' init container run, on a database a newer release migrated:
    # the schema is left alone (no migration runs backwards), and the pods may start on it.
    job = project.get("job", previous_job)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    wait = after["spec"]["template"]["spec"]["initContainers"][0]["command"]
    assert command[:3] == wait[:3] == ["python", "-m", "backend_api.migrate"]
    assert run_migrate(database_url, "upgrade").returncode == 0
    with psycopg.connect(database_url) as connection:  # what the newer release's migration did
        connection.execute("CREATE TABLE newer_feature (id integer)")
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    upgraded = run_migrate(database_url, *command[3:])
    waited = run_migrate(database_url, *wait[3:])

    assert (upgraded.returncode, waited.returncode) == (0, 0), upgraded.stdout + waited.stdout
    assert tables(database_url) == {"alembic_version", "items", "newer_feature"}
    with psycopg.connect(database_url) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == "ffffffffffff"


# -- 6: secrets -----------------------------------------------------------------------------------


def checksum(project: Project) -> str:
    template = project.get("deployment", "flask-api")["spec"]["template"]
    return template["metadata"]["annotations"]["checksum/config"]


def key_digest(project: Project) -> str:
    """The SECRET_KEY's digest: no secret value in the test's output, even when it fails."""
    value = project.get("secret", "flask-api-secrets")["data"]["SECRET_KEY"]
    return hashlib.sha256(value.encode()).hexdigest()


def test_rotating_the_secret_key_rolls_the_pods(project: Project):
    project.synth(secrets=None)  # the first synth keeps a new SECRET_KEY in .env
    project.deploy()
    first = checksum(project)
    eventually(lambda: len(replica_sets(project.plane, project.namespace)) == 1, "a ReplicaSet")
    first_key = key_digest(project)

    ok(project.run(ROTATE))
    project.synth(secrets=None)
    project.deploy()

    assert key_digest(project) != first_key
    assert checksum(project) != first
    rolled = eventually(
        lambda: [
            rs
            for rs in replica_sets(project.plane, project.namespace)
            if rs["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != first
            and rs["status"].get("replicas")
        ],
        "a new ReplicaSet with pods",
    )
    assert len(rolled) == 1


def test_an_existing_secret_changed_in_place_rolls_the_pods_on_restart(project: Project):
    namespace = project.namespace
    ok(project.run(CREATE_NAMESPACE))
    create = (
        f"kubectl -n {namespace} create secret generic api-credentials "
        "--from-literal=SECRET_KEY=fake-secret-key-for-tests-{which}"
    )
    ok(project.run(create.format(which="first")))
    project.synth(secrets=None, EXISTING_SECRET="api-credentials")
    project.deploy()
    eventually(lambda: len(replica_sets(project.plane, namespace)) == 1, "a ReplicaSet")

    # Its manager changes it in place (kubectl, Sealed Secrets, External Secrets)...
    ok(
        project.run(
            create.format(which="second") + " --dry-run=client -o yaml | kubectl replace -f -"
        )
    )
    # ... which a deploy cannot see: nothing rolls, and the Secret is never pruned.
    project.deploy()
    assert len(replica_sets(project.plane, namespace)) == 1
    assert project.names("secret") == ["api-credentials", PARENT]

    ok(project.run(RESTART))

    eventually(lambda: len(replica_sets(project.plane, namespace)) == 2, "a new ReplicaSet")
    project.assert_no_diff()  # the restart's annotation is not dist/'s to remove
    project.deploy()
    assert len(replica_sets(project.plane, namespace)) == 2


# -- 7: uninstall ---------------------------------------------------------------------------------


def test_uninstall_removes_the_release_and_keeps_the_namespace(project: Project):
    plane, namespace = project.plane, project.namespace
    project.synth(MAX_REPLICAS="4", INGRESS_HOST="api.example.com")
    project.deploy()
    project.synth(IMAGE="registry.example.com/team/api:2.0.0")
    project.deploy()
    ok(plane.kubectl("create", "configmap", "someone-elses", "-n", namespace))
    eventually(lambda: pods(plane, namespace), "the app's pods")

    output = ok(project.run(UNINSTALL))

    assert project.members() == {}
    assert project.names("secrets") == []  # the release's Secret and its record
    assert project.names("configmaps") == ["someone-elses"]
    # What the controllers made for the release goes with it: ReplicaSets, pods, the Job's pods.
    eventually(lambda: not get(plane, "pods", "-n", namespace)["items"], "no pods")
    eventually(lambda: not replica_sets(plane, namespace), "no ReplicaSets")
    labels = get(plane, "namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert same_output(output, namespace) == readme_output("Uninstall")


def test_uninstall_with_the_namespace_when_asked(project: Project):
    project.synth()
    project.deploy()

    ok(project.run(UNINSTALL_WITH_NAMESPACE))

    eventually(
        lambda: project.plane.kubectl("get", "namespace", project.namespace).returncode != 0,
        "the namespace gone",
    )
