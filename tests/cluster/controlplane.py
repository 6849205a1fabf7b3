"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager.

Built from the Go modules pinned in tools/controlplane (`make control-plane`), started with free
ports, a temporary data dir, generated certificates and a static admin token, and stopped with
its whole process group. No kubelet and no scheduler: Pods are created and admitted (Pod
Security included) but stay Pending, which is all the tests need to judge our manifests.

Run alone to keep one up for a manual look: `python -m tests.cluster.controlplane [BASE_DIR]`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import built_dir

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-control-plane"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
# Every run's files live in a folder named after this prefix and the pid that owns it, so a
# run killed with -9 is recognised (its pid is gone) and cleaned up by the next one.
DIR_PREFIX = "flask-backend-control-plane-"
READY_DEADLINE_SECONDS = 60
LOG_TAIL_LINES = 20
# The controllers that make our objects do in this cluster what they do in a real one.
CONTROLLERS = (
    "deployment",
    "replicaset",
    "job",
    "ttl-after-finished",
    "endpointslice",
    "namespace",
    "garbagecollector",
    "serviceaccount",
    "disruption",
    "horizontalpodautoscaling",
)


class ControlPlaneError(RuntimeError):
    """A component did not start: the message names it and ends with its last log lines."""


def binaries_dir() -> Path | None:
    """Where `make control-plane` put the binaries for the current pins, or None if not built."""
    return built_dir(BUILD_SCRIPT, BINARIES)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    # A killed test run (even kill -9) must leave no server behind: the kernel sends SIGKILL to
    # each component when the process that started it dies.
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class ControlPlane:
    """Start with `start()` (or use as a context manager); `kubeconfig` is what clients get."""

    bin_dir: Path
    base_dir: Path | None = None  # where the run's folder goes; default: the system temp dir
    ports: dict[str, int] = field(default_factory=dict)  # fixed ports, for the fault tests
    components: list[Component] = field(default_factory=list)
    workdir: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    api_port: int = field(init=False)
    token: str = field(init=False, repr=False)  # the admin's bearer token

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        base = self.base_dir or Path(tempfile.gettempdir())
        remove_stale_runs(base)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=base))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Controller manager first, etcd last: each stops while what it talks to is still up.
        for component in reversed(self.components):
            component.stop()
        self.components.clear()
        if hasattr(self, "workdir"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start(self) -> None:
        self.token = secrets.token_urlsafe(32)
        token = self.token
        pki = self.workdir / "pki"
        pki.mkdir()
        make_certificates(pki)
        (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        etcd_port = self.ports.get("etcd") or free_port()
        self.api_port = self.ports.get("kube-apiserver") or free_port()
        self._check_free("etcd", etcd_port)
        self._check_free("kube-apiserver", self.api_port)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(
            kubeconfig(f"https://127.0.0.1:{self.api_port}", pki / "ca.crt", token)
        )
        self.kubeconfig.chmod(0o600)

        etcd = self._run(
            "etcd",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            # A random peer port nobody connects to: a single member never dials its peers.
            f"--listen-peer-urls=http://127.0.0.1:{free_port()}",
            # A throwaway cluster: durability buys nothing and fsync costs seconds.
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait(etcd, f"http://127.0.0.1:{etcd_port}/health", "healthy")

        apiserver = self._run(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            # The `kubernetes` Service's endpoint would be 127.0.0.1, which the reconciler
            # refuses; nothing here reaches the API through that Service.
            "--endpoint-reconciler-type=none",
            # Pod Security admission is on by default, as in every real cluster; nothing here
            # turns it off.
        )
        api = f"https://127.0.0.1:{self.api_port}"
        self._wait(apiserver, f"{api}/readyz", "ready")

        manager_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        manager_kubeconfig.write_text(self.kubeconfig.read_text())
        manager = self._run(
            "kube-controller-manager",
            f"--kubeconfig={manager_kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",  # no metrics/health listener: nothing scrapes it
            "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
        )
        # Ready for the tests once its serviceaccount controller has made `default` in
        # kube-system: Pods in a new namespace then get theirs too.
        self._wait(
            manager,
            f"{api}/api/v1/namespaces/kube-system/serviceaccounts/default",
            "service accounts",
        )

    # -- helpers -----------------------------------------------------------------------------

    def _check_free(self, name: str, port: int) -> None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise ControlPlaneError(f"{name} cannot start: port {port} is already taken")

    def _run(self, name: str, *args: str) -> Component:
        binary = self.bin_dir / name
        log = self.workdir / f"{name}.log"
        with log.open("wb") as stream:
            try:
                process = subprocess.Popen(
                    [str(binary), *args],
                    stdin=subprocess.DEVNULL,
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,  # its own process group, killed whole on stop
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise ControlPlaneError(f"{name} cannot start: {binary}: {error}") from None
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def _wait(self, component: Component, url: str, what: str) -> None:
        """Poll url until it answers 200, while the component runs, for a bounded time."""
        context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})  # noqa: S310 - loopback
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self._check_alive(component)
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{component.name}: {what} not within {READY_DEADLINE_SECONDS} s ({url}); its last "
            f"log lines:\n{component.tail()}"
        )

    def _check_alive(self, component: Component) -> None:
        code = component.process.poll()
        if code is not None:
            raise ControlPlaneError(
                f"{component.name} exited with code {code} while starting; its last log "
                f"lines:\n{component.tail()}"
            )

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane (never the user's own kubeconfig)."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )

    def install_crds(self, *files: str) -> None:
        """Install CRDs that `make control-plane` copied from their Go modules (tools/crds),
        e.g. "monitoring.coreos.com_servicemonitors.yaml", and wait until they serve."""
        crds = self.bin_dir.parent / "crds"
        for file in files:
            applied = self.kubectl("apply", "--server-side", "-f", str(crds / file))
            if applied.returncode != 0:
                raise ControlPlaneError(f"CRD {file} was not accepted: {applied.stderr}")
            name = applied.stdout.split()[0]  # customresourcedefinition.../NAME serverside-applied
            deadline = time.monotonic() + 30
            while True:
                waited = self.kubectl("wait", "--for=condition=Established", name, "--timeout=30s")
                # Just created, a CRD may have no conditions yet: kubectl wait then fails at once
                # (".status.conditions accessor error") instead of waiting.
                if waited.returncode == 0 or "accessor error" not in waited.stderr:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if waited.returncode != 0:
                raise ControlPlaneError(f"CRD {file} was not established: {waited.stderr}")

    def env(self) -> dict[str, str]:
        """An environment in which plain `kubectl` (from the built binaries) talks to this."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }


def remove_stale_runs(base: Path) -> None:
    """Remove the folders of earlier runs whose process is gone (killed with -9, a crash)."""
    for folder in base.glob(f"{DIR_PREFIX}*"):
        pid_text = folder.name.removeprefix(DIR_PREFIX).partition("-")[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1, and service-account keys."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True, timeout=60)

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    openssl(
        *("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2"),
        *("-subj", "/CN=flask-backend-test-ca", "-out", "ca.crt"),
    )
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "apiserver.key")
    openssl(
        *("req", "-new", "-key", "apiserver.key", "-subj", "/CN=kube-apiserver"),
        *("-out", "apiserver.csr"),
    )
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl(
        *("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-sha256", "-extfile", "san.ext"),
        *("-out", "apiserver.crt"),
    )
    openssl("genrsa", "-out", "sa.key", "2048")
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def kubeconfig(server: str, ca: Path, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: admin
current-context: test
"""


if __name__ == "__main__":
    # Keeps one up until Ctrl-C or SIGTERM (the tests use this to prove nothing is left).
    found = binaries_dir()
    if found is None:
        sys.exit("control plane not built: run `make control-plane`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with ControlPlane(found, base_dir=base) as plane:
        print(f"ready {os.getpid()} {plane.workdir} KUBECONFIG={plane.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
