"""The user's path on a real node: build the image, synthesize, `kubectl apply -f dist`, pods
Running and Ready, the Service answering, backed by PostgreSQL in the cluster.

Every node test is in this one module: pytest-xdist (--dist loadgroup, tests/conftest.py) gives
a module to one worker, so the session's one node (tests/node/conftest.py) is started once and
shared by them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.node.node import NODE_IP, Node
from tests.postgres import MaskedUrl
from tests.test_examples import run_example_script
from tier_settings import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]
POSTGRESQL_MANIFEST = Path(__file__).with_name("postgresql.yaml")
DATABASE_IP = "10.96.0.50"  # the postgresql Service's fixed ClusterIP (postgresql.yaml)
NAMESPACE = "backend"
APP = "flask-api"
API_PORT = 8000
WAIT = "120s"
# The seed's "How to Deploy" and "How to Verify", verbatim, run in the synthesized folder.
SEED_DEPLOY = ("kubectl get ns backend || kubectl create ns backend", "kubectl apply -f .")
SEED_VERIFY = ("kubectl get pods -n backend", "kubectl get svc -n backend")
# One key for every release synthesized here: a new key would itself roll the pods.
SECRET_KEY = secrets.token_urlsafe(32)
NEXT_IMAGE = f"{DEFAULT_IMAGE}-next"  # a new release's tag, given to the same image


@dataclass
class Deployed:
    dist: Path
    outputs: dict[str, str]  # each seed command's output
    timings: dict[str, float]  # seconds from `kubectl apply`, per step
    service_ip: str


def shell(node: Node, command: str, cwd: Path) -> str:
    """Run a command line as a person types it; its output and errors as they interleave."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=node.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{node.describe()}"
    return result.stdout


def synthesize(out: Path, database_url: str, *args: str) -> None:
    """main.py as a user runs it, with the secret values from the environment."""
    env = {
        **os.environ,
        "CDK8S_OUTDIR": str(out),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def database(node: Node) -> str:
    """PostgreSQL on the node; returns the backend's DATABASE_URL (never printed)."""
    password = secrets.token_urlsafe(24)
    node.kubectl_ok("apply", "-f", str(POSTGRESQL_MANIFEST))
    node.kubectl_ok(
        *("create", "secret", "generic", "postgresql", "-n", "database"),
        f"--from-literal=POSTGRES_PASSWORD={password}",
    )
    node.kubectl_ok(
        "rollout", "status", "deployment/postgresql", "-n", "database", f"--timeout={WAIT}"
    )
    return MaskedUrl(f"postgresql://app:{password}@{DATABASE_IP}:5432/app")


@pytest.fixture(scope="module")
def deployed(node: Node, database: str, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """dist/ synthesized with DATABASE_URL pointing at the in-cluster PostgreSQL, then the
    seed's commands, timed from the apply."""
    dist = tmp_path_factory.mktemp("project") / "dist"
    synthesize(dist, database)
    outputs = {}
    for command in SEED_DEPLOY:
        outputs[command] = shell(node, command, dist)
    applied = time.monotonic()
    timings = {}
    node.kubectl_ok(
        "wait",
        "--for=condition=complete",
        "job",
        "--all",
        "-n",
        NAMESPACE,
        f"--timeout={WAIT}",
    )
    timings["migration Job Complete"] = time.monotonic() - applied
    node.kubectl_ok("rollout", "status", f"deployment/{APP}", "-n", NAMESPACE, f"--timeout={WAIT}")
    timings["Deployment rolled out (pods Ready)"] = time.monotonic() - applied
    for command in SEED_VERIFY:
        outputs[command] = shell(node, command, dist)
    service_ip = node.kubectl_ok(
        "get", "svc", APP, "-n", NAMESPACE, "-o", "jsonpath={.spec.clusterIP}"
    )
    print("\n".join(f"$ {c}\n{o}" for c, o in outputs.items()))
    print(f"timings from apply: {timings}; node start-up: {node.timings}")
    return Deployed(dist, outputs, timings, service_ip)


def pods(node: Node, selector: str = f"app.kubernetes.io/name={APP}") -> list[dict]:
    got = node.kubectl_ok("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json")
    return json.loads(got)["items"]


def http_get(
    host: str, port: int, path: str, method: str = "GET", body: dict | None = None, timeout=5.0
):
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- (1) the seed's commands -------------------------------------------------------------------


def test_seed_commands_bring_the_pods_running_and_ready(node: Node, deployed: Deployed) -> None:
    listing = deployed.outputs["kubectl get pods -n backend"].splitlines()
    header, rows = listing[0].split(), [line.split() for line in listing[1:]]
    assert header[:3] == ["NAME", "READY", "STATUS"]
    api_rows = [row for row in rows if not row[0].startswith(f"{APP}-migrate-")]
    job_rows = [row for row in rows if row[0].startswith(f"{APP}-migrate-")]
    assert len(api_rows) == 2
    assert all(row[1:3] == ["1/1", "Running"] for row in api_rows), listing
    assert [row[2] for row in job_rows] == ["Completed"], listing
    jobs = json.loads(node.kubectl_ok("get", "jobs", "-n", NAMESPACE, "-o", "json"))["items"]
    assert [job["status"].get("succeeded") for job in jobs] == [1]
    services = deployed.outputs["kubectl get svc -n backend"]
    assert f"{APP} " in services
    assert deployed.service_ip in services


# -- (2) through the Service and through kubectl port-forward ---------------------------------


def test_service_answers_on_its_cluster_ip_with_items_stored_in_postgresql(
    node: Node, deployed: Deployed
) -> None:
    ip = deployed.service_ip
    assert node.in_netns(http_get, ip, 80, "/readyz")[0] == 200
    name = f"through-cluster-ip-{secrets.token_hex(4)}"
    status, _ = node.in_netns(http_get, ip, 80, "/api/v1/items", "POST", {"name": name})
    assert status == 201
    status, body = node.in_netns(http_get, ip, 80, "/api/v1/items")
    assert status == 200
    assert name in body.decode()
    # Stored in the cluster's PostgreSQL, not in a pod: psql there finds it.
    (postgresql,) = json.loads(node.kubectl_ok("get", "pods", "-n", "database", "-o", "json"))[
        "items"
    ]
    rows = node.kubectl_ok(
        *("exec", "-n", "database", postgresql["metadata"]["name"], "--"),
        *("psql", "--host=/tmp", "--username=app", "--dbname=app", "--tuples-only", "--command"),
        "SELECT name FROM items",
    )
    assert name in rows


def test_port_forward_reaches_the_service(node: Node, deployed: Deployed) -> None:
    command = [str(node.bin_dir / "kubectl"), "port-forward", "-n", NAMESPACE, f"svc/{APP}", ":80"]
    with subprocess.Popen(
        command, env=node.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as forward:
        try:
            line = forward.stdout.readline()  # type: ignore[union-attr]
            # "Forwarding from 127.0.0.1:PORT -> 8000"
            assert line.startswith("Forwarding from 127.0.0.1:"), line
            port = int(line.split()[2].rsplit(":", 1)[1])
            assert http_get("127.0.0.1", port, "/readyz")[0] == 200
            name = f"through-port-forward-{secrets.token_hex(4)}"
            assert http_get("127.0.0.1", port, "/api/v1/items", "POST", {"name": name})[0] == 201
            status, body = http_get("127.0.0.1", port, "/api/v1/items")
            assert (status, name in body.decode()) == (200, True)
        finally:
            forward.terminate()
            forward.wait(timeout=10)


# -- (4) the pods run as the manifest says -----------------------------------------------------


def test_pods_run_as_the_manifest_says(node: Node, deployed: Deployed) -> None:
    pod = pods(node)[0]["metadata"]["name"]

    def inside(*command: str) -> str:
        return node.kubectl_ok("exec", "-n", NAMESPACE, pod, "-c", APP, "--", *command)

    status = inside("cat", "/proc/1/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[:2] == ["10001", "10001"]
    assert fields["Gid"].split()[:2] == ["10001", "10001"]
    assert fields["CapEff"].strip() == "0000000000000000"
    assert fields["CapPrm"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # filter mode: RuntimeDefault
    python = "import os,sys; print(os.access(sys.argv[1], os.W_OK))"
    assert inside("python", "-c", python, "/app").strip() == "False"  # read-only root
    assert inside("python", "-c", python, "/tmp").strip() == "True"
    mounts = inside("cat", "/proc/self/mounts")
    root = next(line for line in mounts.splitlines() if line.split()[1] == "/")
    assert "ro" in root.split()[3].split(",")
    # Secrets as files, not environment variables, with the manifest's mode (0440).
    listing = inside("ls", "-lL", "/run/secrets")
    assert "-r--r----- " in listing
    assert "DATABASE_URL" in listing
    assert "DATABASE_URL" not in inside("env")


# -- host state, and nothing left behind -------------------------------------------------------


def host_state() -> dict[str, object]:
    """What the node must not change on the host."""
    from tests.node.node import DIR_PREFIX, KUBELET_SYSCTLS

    def run(*command: str) -> str:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout

    watched = [*KUBELET_SYSCTLS, "net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet"]
    watched += ["net/netfilter/nf_conntrack_max", "net/bridge/bridge-nf-call-iptables"]
    sysctls = {}
    for name in watched:
        path = Path("/proc/sys") / name
        sysctls[name] = path.read_text().strip() if path.exists() else None
    return {
        "sysctls": sysctls,
        "links": run("ip", "-o", "link", "show"),
        "addresses": run("ip", "-o", "addr", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "iptables": "\n".join(
            line for line in run("iptables-save").splitlines() if not line.startswith("#")
        ),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{DIR_PREFIX}*")),
        "run folders": sorted(str(p) for p in Path("/tmp").glob(f"{DIR_PREFIX}*")),
    }


def test_a_node_changes_nothing_on_the_host_and_leaves_nothing_after_ctrl_c(
    node: Node,
) -> None:
    # A second node, in a process of its own, stopped as a person stops it: Ctrl-C.
    before = host_state()
    with killed_when_left([sys.executable, "-m", "tests.node.node", "--no-images"]) as started:
        line = started.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ready "), line + started.stderr.read()  # type: ignore[union-attr]
        pid, workdir = int(line.split()[1]), line.split()[2]
        during = host_state()
        os.kill(pid, signal.SIGINT)
        started.wait(timeout=120)
    ignore = ("cgroups", "run folders")  # the second node's own, while it runs
    assert {k: v for k, v in during.items() if k not in ignore} == {
        k: v for k, v in before.items() if k not in ignore
    }
    assert_nothing_left(workdir, before)


@contextlib.contextmanager
def killed_when_left(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """`command` from ROOT in a process group of its own, its output piped as text; the whole
    group is killed if it still runs when the block ends (a failed assertion included)."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    with subprocess.Popen(
        command, cwd=ROOT, text=True, start_new_session=True, **options
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def assert_nothing_left(workdir: str, before: dict[str, object]) -> None:
    """The host as it was before the node: no process, mount, cgroup, folder or address."""
    assert host_state() == before
    assert not Path(workdir).exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", workdir], capture_output=True, text=True, timeout=30
    ).stdout
    assert leftovers == ""
    assert NODE_IP not in host_state()["addresses"]  # type: ignore[operator]


# A pytest session of its own with the node fixture: one test fails, one is interrupted.
FIXTURE_USERS = """
import time


def test_that_fails(node):
    print("workdir", node.workdir, flush=True)
    raise AssertionError("a failing test")


def test_that_is_interrupted(node):
    print("workdir", node.workdir, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("how", ["a failing test", "Ctrl-C"])
def test_the_node_fixture_leaves_nothing_after(node: Node, how: str, tmp_path: Path) -> None:
    # The session's own node keeps running (the `node` argument): the fixture under test is
    # a second one, in a pytest process of its own, as a person runs the node tests.
    (tmp_path / "test_users.py").write_text(FIXTURE_USERS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    test = "test_that_fails" if how == "a failing test" else "test_that_is_interrupted"
    before = host_state()
    with killed_when_left(
        [
            *(sys.executable, "-m", "pytest", "-s", "-q", "-p", "tests.node.conftest"),
            *("-c", str(tmp_path / "pytest.ini"), f"{tmp_path / 'test_users.py'}::{test}"),
        ],
        env={**os.environ, "CI": "true"},
        stderr=subprocess.STDOUT,
    ) as session:
        output = []
        for line in session.stdout:  # type: ignore[union-attr]
            output.append(line)
            if line.startswith("workdir "):
                break
        last = output[-1] if output else ""
        assert last.startswith("workdir "), "".join(output)
        workdir = last.split()[1]
        if how == "Ctrl-C":
            session.send_signal(signal.SIGINT)
        rest, _ = session.communicate(timeout=180)
    report = "".join(output) + rest
    expected = {"a failing test": "1 failed", "Ctrl-C": "KeyboardInterrupt"}[how]
    assert expected in report, report
    assert_nothing_left(workdir, before)


# -- (3) zero-downtime rollouts, measured ------------------------------------------------------


@dataclass
class Load:
    """Requests through the Service at a steady rate, from inside the node's network."""

    node: Node
    url_host: str
    rate: float = 25.0  # per second; the issue asks for at least 20
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)  # seconds from the start

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _one(self) -> None:
        began = time.monotonic()
        try:
            status, _ = http_get(self.url_host, 80, "/api/v1/items", timeout=REQUEST_TIMEOUT)
        except OSError as error:
            self._failed(began, f"{type(error).__name__}: {error}")
            return
        if status != 200:
            self._failed(began, f"HTTP {status}")
            return
        self.latencies.append(time.monotonic() - began)

    def _failed(self, began: float, what: str) -> None:
        self.failures.append(what)
        self.failed_at.append(began - self.started)

    def _loop(self, offset: float, every: float) -> None:
        next_at = time.monotonic() + offset
        deadline = time.monotonic() + LOAD_DEADLINE_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._one()
            next_at += every
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        # Ten senders, each at a tenth of the rate: slow answers (p99 near 1 s on two busy
        # cores) do not hold the rate below what was asked.
        senders = 10
        every = senders / self.rate
        for index in range(senders):
            thread = threading.Thread(
                target=lambda i=index: self.node.in_netns(self._loop, i * every / senders, every),
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.seconds = time.monotonic() - self.started

    def report(self) -> str:
        ordered = sorted(self.latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else float("nan")
        count = len(self.latencies) + len(self.failures)
        kinds = Counter(self.failures).most_common()
        when = f" from {min(self.failed_at):.0f} to {max(self.failed_at):.0f} s" if kinds else ""
        slowest = ordered[-1] if ordered else float("nan")
        return (
            f"{count} requests in {self.seconds:.1f} s ({count / self.seconds:.1f}/s), "
            f"{len(self.failures)} failed {kinds}{when}, p99 {p99 * 1000:.0f} ms, "
            f"slowest {slowest * 1000:.0f} ms"
        )


LOAD_DEADLINE_SECONDS = 300
# A slow answer is not a lost one: on two cores shared with the control plane, a new release's
# Job and pods starting can hold a request for seconds (the report gives p99 and the slowest).
REQUEST_TIMEOUT = 30.0


def release(deployed: Deployed, database: str, name: str, *args: str) -> Path:
    """Synthesize a new release with main.py's flags (before the load starts: the synth is
    CI's work, not the cluster's)."""
    dist = deployed.dist.parent.parent / name / "dist"
    dist.parent.mkdir()
    synthesize(dist, database, *args)
    return dist


def replica_sets(node: Node) -> set[str]:
    got = node.kubectl_ok(
        "get", "rs", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={APP}", "-o", "name"
    )
    return set(got.split())


def roll_out_under_load(node: Node, deployed: Deployed, dist: Path) -> Load:
    """`kubectl apply -f .` in dist while the load runs (from before the apply until after the
    rollout is complete)."""
    with Load(node, deployed.service_ip) as load:
        time.sleep(3)
        shell(node, "kubectl apply -f .", dist)
        node.kubectl_ok(
            *("rollout", "status", f"deployment/{APP}", "-n", NAMESPACE, "--timeout=300s"),
            timeout=330,
        )
        time.sleep(3)
    return load


def test_new_image_tag_and_config_roll_out_without_a_failed_request(
    node: Node, deployed: Deployed, database: str
) -> None:
    node.tag_image(f"docker.io/library/{DEFAULT_IMAGE}", f"docker.io/library/{NEXT_IMAGE}")
    jobs_before = set(node.kubectl_ok("get", "job", "-n", NAMESPACE, "-o", "name").split())
    sets_before = replica_sets(node)
    dist = release(
        deployed,
        database,
        "release-next",
        *(f"--image={NEXT_IMAGE}", "--image-pull-policy=IfNotPresent"),
        "--log-level=warning",
    )
    load = roll_out_under_load(node, deployed, dist)
    print(f"rollout to a new image tag and config: {load.report()}")
    jobs = node.kubectl_ok("get", "job", "-n", NAMESPACE, "-o", "name")
    new_jobs = set(jobs.split()) - jobs_before
    assert len(new_jobs) == 1, jobs  # the new release's migration Job...
    (job,) = new_jobs
    status = json.loads(node.kubectl_ok("get", job, "-n", NAMESPACE, "-o", "json"))["status"]
    assert (status.get("succeeded"), status.get("failed")) == (1, None)  # ...ran once
    assert replica_sets(node) - sets_before  # the pods were replaced
    assert load.failures == [], f"{load.report()}\n{node.describe()}"
    assert len(load.latencies) >= 20 * load.seconds, load.report()
    # The Deployment's pods now (the migration Jobs' pods carry the same labels, and have
    # Succeeded; old pods may still be terminating).
    serving = [
        p
        for p in pods(node)
        if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]
    ]
    assert {c["image"] for p in serving for c in p["spec"]["containers"]} == {NEXT_IMAGE}


def test_a_config_only_change_rolls_the_pods_without_a_failed_request(
    node: Node, deployed: Deployed, database: str
) -> None:
    sets_before = replica_sets(node)
    dist = release(
        deployed,
        database,
        "release-config",
        *(f"--image={NEXT_IMAGE}", "--image-pull-policy=IfNotPresent"),
        "--log-level=error",
    )
    load = roll_out_under_load(node, deployed, dist)
    print(f"rollout of a config-only change: {load.report()}")
    assert replica_sets(node) - sets_before, "a ConfigMap change must roll the pods"
    assert load.failures == [], load.report()
    assert len(load.latencies) >= 20 * load.seconds, load.report()


# -- (5) self-healing --------------------------------------------------------------------------


def ready_pods(node: Node) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in pods(node)
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]


def wait_for(what: str, check, node: Node, seconds: float = 180) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not within {seconds:.0f} s\n{node.describe()}")


def test_a_deleted_pod_is_replaced_by_a_new_ready_one(node: Node, deployed: Deployed) -> None:
    before = ready_pods(node)
    assert len(before) == 2
    node.kubectl_ok("delete", "pod", "-n", NAMESPACE, before[0], "--wait=false")
    wait_for(
        "a new Ready pod",
        lambda: len(ready_pods(node)) == 2 and before[0] not in ready_pods(node),
        node,
    )


def test_a_hung_app_is_restarted_by_its_liveness_probe(node: Node, deployed: Deployed) -> None:
    pod = json.loads(
        node.kubectl_ok("get", "pod", "-n", NAMESPACE, ready_pods(node)[0], "-o", "json")
    )
    name = pod["metadata"]["name"]
    (status,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == APP]
    restarts = status["restartCount"]
    # The app's processes (gunicorn's master and workers) stop answering: frozen from the host,
    # as a deadlock would freeze them. The kubelet's liveness probe must restart the container.
    node.signal_container(status["containerID"], signal.SIGSTOP)

    def restarted() -> bool:
        now = json.loads(node.kubectl_ok("get", "pod", "-n", NAMESPACE, name, "-o", "json"))
        (current,) = [c for c in now["status"]["containerStatuses"] if c["name"] == APP]
        return current["restartCount"] > restarts and current.get("ready", False)

    wait_for("the liveness probe restarting the frozen container", restarted, node)


def database_running(node: Node, running: bool) -> None:
    """Freeze PostgreSQL's processes (SIGSTOP: a hung database server, queries and new
    connections wait), or let them go on (SIGCONT). Its data stays, unlike a scale to zero."""
    (pod,) = json.loads(node.kubectl_ok("get", "pods", "-n", "database", "-o", "json"))["items"]
    (container,) = pod["status"]["containerStatuses"]
    node.signal_container(container["containerID"], signal.SIGCONT if running else signal.SIGSTOP)


def restart_counts(node: Node) -> dict[str, int]:
    return {
        p["metadata"]["name"]: sum(c["restartCount"] for c in p["status"]["containerStatuses"])
        for p in pods(node)
        if p["metadata"].get("deletionTimestamp") is None
    }


def test_without_the_database_pods_go_unready_but_are_not_restarted(
    node: Node, deployed: Deployed
) -> None:
    wait_for("2 Ready pods", lambda: len(ready_pods(node)) == 2, node)
    restarts = restart_counts(node)
    try:
        database_running(node, False)
        frozen = time.monotonic()
        wait_for("every pod unready", lambda: ready_pods(node) == [], node, seconds=120)
        # Three liveness periods (10 s each) from the freeze: a liveness probe that depended on
        # the database would have restarted the container by then.
        time.sleep(max(0.0, frozen + 32 - time.monotonic()))
        assert restart_counts(node) == restarts
    finally:
        database_running(node, True)
    wait_for("both pods Ready again", lambda: len(ready_pods(node)) == 2, node)
    assert restart_counts(node) == restarts


# -- (6) kubectl drain and the PodDisruptionBudget ---------------------------------------------


def drain(node: Node, seconds: int) -> subprocess.CompletedProcess[str]:
    """Drain the node of the backend's pods (only: PostgreSQL stays), for at most seconds."""
    return node.kubectl(
        *("drain", "node", "--pod-selector", f"app.kubernetes.io/name={APP}"),
        *("--delete-emptydir-data", "--ignore-daemonsets", f"--timeout={seconds}s"),
        timeout=seconds + 30,
    )


def test_drain_evicts_backend_pods_one_at_a_time_as_the_budget_allows(
    node: Node, deployed: Deployed
) -> None:
    # One node: an evicted pod's replacement cannot start elsewhere, so after the first
    # eviction the budget (maxUnavailable 1) refuses the second, and drain keeps asking.
    wait_for("2 Ready pods", lambda: len(ready_pods(node)) == 2, node)
    before = set(ready_pods(node))
    try:
        result = drain(node, 20)
        assert result.returncode != 0, result.stdout
        assert "disruption budget" in result.stderr + result.stdout
        remaining = {p["metadata"]["name"] for p in pods(node)} & before
        assert len(remaining) == 1, result.stdout + result.stderr
    finally:
        node.kubectl_ok("uncordon", "node")
    wait_for("both pods Ready again", lambda: len(ready_pods(node)) == 2, node)


def test_drain_evicts_unready_backend_pods_when_the_database_is_down(
    node: Node, deployed: Deployed
) -> None:
    wait_for("2 Ready pods", lambda: len(ready_pods(node)) == 2, node)
    try:
        database_running(node, False)
        wait_for("every pod unready", lambda: ready_pods(node) == [], node, seconds=120)
        before = {p["metadata"]["name"] for p in pods(node)}
        result = drain(node, 15)
        remaining = {p["metadata"]["name"] for p in pods(node)} & before
        assert (result.returncode, remaining) == (0, set()), result.stdout + result.stderr
    finally:
        database_running(node, True)
        node.kubectl_ok("uncordon", "node")
        wait_for("both pods Ready again", lambda: len(ready_pods(node)) == 2, node)


# -- (7) every example reaches Ready -----------------------------------------------------------

# The examples' images, as the node's registry serves them (containerd mirrors these names to
# it): app/Dockerfile's image, the nginx stand-in for the three-tier example's frontend, and the
# plain Flask image (tests/plain_flask).
EXAMPLE_IMAGES = {
    "api.tar": "shop/api:1.4.2",  # registry.example.com/shop/api:1.4.2
    "nginx.tar": "nginxinc/nginx-unprivileged:1.27.3-alpine",  # docker.io/...
    "hello.tar": "team/hello:1.0.0",  # registry.example.com/team/hello:1.0.0
}
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def registry(node: Node) -> None:
    node.serve_registry()
    for archive, repository in EXAMPLE_IMAGES.items():
        node.push(archive, repository)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_reaches_ready(
    node: Node,
    deployed: Deployed,
    database: str,
    registry: None,
    example: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "dist"
    result = run_example_script(example, out)
    assert result.returncode == 0, result.stderr
    if example == "three_tier":
        # Its backend's credentials are a Secret managed outside the chart (existing_secret).
        node.kubectl_ok(
            *("create", "secret", "generic", "api-credentials", "-n", "backend"),
            f"--from-literal=DATABASE_URL={database}",
            f"--from-literal=SECRET_KEY={secrets.token_urlsafe(32)}",
        )
    shell(node, "kubectl apply -f .", out)
    objects = node.kubectl_ok("get", "-f", str(out), "-o", "json")
    items = json.loads(objects).get("items", [])
    try:
        example_ready(node, items)
    finally:
        # Its pods' CPU requests would hold the next example's Pending on one node. Its
        # Namespaces stay: three_tier's is `backend`, which the other tests' release is in.
        for item in items:
            if item["kind"] != "Namespace":
                node.kubectl(
                    *("delete", f"{item['kind']}/{item['metadata']['name']}"),
                    *("-n", item["metadata"].get("namespace", "default")),
                    *("--cascade=foreground", "--ignore-not-found", "--timeout=120s"),
                    timeout=150,
                )
        if example == "three_tier":
            node.kubectl("delete", "secret", "api-credentials", "-n", "backend")


def example_ready(node: Node, items: list[dict]) -> None:
    """Every Job of the example Complete and every Deployment rolled out with all pods Ready."""
    for item in items:
        kind, name = item["kind"], item["metadata"]["name"]
        namespace = item["metadata"].get("namespace", "")
        if kind == "Job":
            node.kubectl_ok(
                *("wait", "--for=condition=complete", f"job/{name}", "-n", namespace),
                f"--timeout={WAIT}",
            )
        elif kind == "Deployment":
            node.kubectl_ok(
                "rollout",
                "status",
                f"deployment/{name}",
                "-n",
                namespace,
                f"--timeout={WAIT}",
            )
    deployments = [i for i in items if i["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        status = json.loads(
            node.kubectl_ok(
                *("get", "deployment", deployment["metadata"]["name"]),
                *("-n", deployment["metadata"]["namespace"], "-o", "json"),
            )
        )["status"]
        assert status.get("readyReplicas", 0) >= 1
        assert status.get("readyReplicas") == status.get("replicas"), status
