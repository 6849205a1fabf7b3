"""A real Kubernetes node for the tests, in namespaces of its own, and the images it runs.

Everything runs inside one PID, network and mount namespace that `start()` creates: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler (as in tests/cluster/controlplane.py,
built by `make control-plane`), containerd and runc from Debian, the kubelet, kube-proxy in
iptables mode, the CNI bridge, and the pods. The node's IP is 10.200.0.2 on a veth pair whose two
ends are both inside; pods get 10.244.0.0/24, Services 10.96.0.0/24. None of it is routed on the
host's interfaces. kubectl on the host reaches the API server through a forwarder from a free
port on 127.0.0.1; `in_netns()` runs a function whose sockets are inside the node's network.

Nothing on the host changes: the kubelet's kernel settings are files bind-mounted over /proc/sys
in the private mount namespace (the host's values stay), iptables rules live in the node's
network namespace, and the only cgroups are the subtree named after this run. `stop()` kills the
namespace's first process, which makes the kernel kill every process in it; its mounts go with
it; then the cgroup subtree and the run's folder are removed. A run killed with -9 takes its
namespace with it (the holder dies with its parent); the next run removes what is left on disk.

The images come from scripts/build-images (`make images`): docker archives of the image
app/Dockerfile builds, of PostgreSQL, and of the pause container; they are imported into
containerd's k8s.io namespace, so pods with imagePullPolicy IfNotPresent never pull.

Run alone to keep one up for a manual look: `python -m tests.node.node`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster.controlplane import (
    CONTROLLERS,
    Component,
    _die_with_parent,
    binaries_dir,
    free_port,
    kubeconfig,
    make_certificates,
)
from tests.support import built_dir

ROOT = Path(__file__).resolve().parents[2]
IMAGES_SCRIPT = ROOT / "scripts" / "build-images"
ARCHIVES = ("api.tar", "postgresql.tar", "pause.tar", "nginx.tar", "hello.tar")
IMPORTED = ("api.tar", "postgresql.tar", "pause.tar")  # into containerd at start; the rest
# only through the registry (serve_registry), for pods whose imagePullPolicy is Always.
REGISTRY = "127.0.0.1:5000"  # inside the node; containerd's mirror for these registries:
MIRRORED = ("docker.io", "registry.example.com")
NODE_BINARIES = ("kube-scheduler", "kubelet", "kube-proxy")
PAUSE_IMAGE = "localhost/pause:catatonit"
DIR_PREFIX = "flask-backend-node-"  # the run's folder and its cgroup subtree: prefix + pid
NODE_NAME = "node"
NODE_IP = "10.200.0.2"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
API_PORT = 6443  # inside the namespace; the host gets a free port of its own
DEADLINE_SECONDS = 90
LOG_TAIL_LINES = 20
CNI_BIN = Path("/usr/lib/cni")
# What the kubelet wants these host-wide kernel settings to be (it writes them when they differ;
# with protectKernelDefaults it refuses to start instead). Files with these values are mounted
# over them inside the node's mount namespace only.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NodeError(RuntimeError):
    """The node did not come up: the message names the part and ends with its last log lines."""


def images_dir() -> Path | None:
    """Where `make images` put the archives for the current app/ and tools/images, or None."""
    return built_dir(IMAGES_SCRIPT, ARCHIVES)


def node_binaries_dir() -> Path | None:
    """The control plane's binaries folder, if the node's binaries were built into it too."""
    found = binaries_dir()
    if found is None or not all((found / name).is_file() for name in NODE_BINARIES):
        return None
    return found


def missing_tools() -> list[str]:
    """The Debian packages the node runs that are not installed (.ci/run installs them)."""
    wanted = {"containerd": "containerd", "ctr": "containerd", "runc": "runc"}
    wanted |= {"iptables": "iptables", "unshare": "util-linux", "nsenter": "util-linux"}
    wanted |= {"docker-registry": "docker-registry", "skopeo": "skopeo"}
    missing = {package for tool, package in wanted.items() if shutil.which(tool) is None}
    if not (CNI_BIN / "bridge").is_file():
        missing.add("containernetworking-plugins")
    return sorted(missing)


@dataclass
class Node:
    """Start with `start()` (or use as a context manager); `kubeconfig` is what clients get."""

    bin_dir: Path
    images: Path | None  # the archives to import; None: a node without images
    components: list[Component] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds from start, per step
    workdir: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    token: str = field(init=False, repr=False)
    holder: subprocess.Popen[bytes] | None = field(init=False, default=None)
    init_pid: int = field(init=False)  # the namespace's first process, as the host sees it
    cgroup_name: str = field(init=False)

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        remove_stale_runs()
        self.cgroup_name = f"{DIR_PREFIX}{os.getpid()}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-"))
        self._netns_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._forwarder: socket.socket | None = None
        began = time.monotonic()
        try:
            self._start(began)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything and leave nothing: processes, mounts, cgroups, files."""
        if getattr(self, "_forwarder", None) is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept
                self._forwarder.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
            self._forwarder.close()  # type: ignore[union-attr]
        # Nothing inside keeps state worth a graceful stop: the namespace's first process dies,
        # and with it every process inside (components, shims, pods), killed by the kernel.
        # unshare exits once its child is reaped, which is after the last of them is gone.
        if self.holder is not None:
            if hasattr(self, "init_pid"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.init_pid, signal.SIGKILL)
            try:
                self.holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.holder.pid, signal.SIGKILL)
                self.holder.wait(timeout=30)
            self.holder = None
        for component in self.components:  # each nsenter, once the component it ran is gone
            try:
                component.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                component.stop()
        self.components.clear()
        if getattr(self, "_netns_pool", None) is not None:
            self._netns_pool.shutdown(wait=False, cancel_futures=True)  # type: ignore[union-attr]
        if hasattr(self, "cgroup_name"):
            remove_cgroups(self.cgroup_name)
        if hasattr(self, "workdir"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start(self, began: float) -> None:
        self._enter_namespaces()
        self._set_up_inside()
        self.timings["namespaces"] = time.monotonic() - began
        self._write_configs()

        containerd = self._run(
            "containerd", "containerd", "--config", self._path("containerd.toml")
        )
        etcd = self._run(
            "etcd",
            str(self.bin_dir / "etcd"),
            f"--data-dir={self._path('etcd')}",
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--unsafe-no-fsync",  # a throwaway cluster: durability buys nothing
            "--log-level=warn",
        )
        self._wait_socket(containerd, self.workdir / "containerd.sock")
        # The images load while the control plane starts (the biggest step of the start-up).
        self._import_error = ""
        imports = threading.Thread(target=self._import_images, daemon=True)
        imports.start()
        self._wait_http(etcd, "http://127.0.0.1:2379/health")
        apiserver = self._run("kube-apiserver", *self._apiserver_args())
        self._wait_http(apiserver, f"https://127.0.0.1:{API_PORT}/readyz")
        self.timings["api server"] = time.monotonic() - began

        pki = self.workdir / "pki"
        self._run(
            "kube-controller-manager",
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={self._path('inside.kubeconfig')}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            # The controllers of tests/cluster, and those a cluster with nodes needs.
            "--controllers="
            + ",".join((*CONTROLLERS, "nodelifecycle", "podgc", "root-ca-cert-publisher")),
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
        )
        self._run(
            "kube-scheduler",
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={self._path('inside.kubeconfig')}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
        )
        kubelet = self._run(
            "kubelet",
            str(self.bin_dir / "kubelet"),
            f"--config={self._path('kubelet.yaml')}",
            f"--kubeconfig={self._path('inside.kubeconfig')}",
            f"--root-dir={self._path('kubelet')}",
            f"--cert-dir={self._path('kubelet-pki')}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
        )
        self._run(
            "kube-proxy",
            str(self.bin_dir / "kube-proxy"),
            f"--config={self._path('kube-proxy.yaml')}",
        )
        self._start_forwarder()
        self._wait_node_ready(kubelet)
        self.timings["node ready"] = time.monotonic() - began
        imports.join(timeout=max(1.0, DEADLINE_SECONDS - (time.monotonic() - began)))
        if imports.is_alive() or self._import_error:
            raise NodeError(f"importing the images failed: {self._import_error or 'timed out'}")
        self.timings["images imported"] = time.monotonic() - began

    # -- the namespaces ----------------------------------------------------------------------

    def _enter_namespaces(self) -> None:
        """A holder process owns new PID, network and mount namespaces; its first process
        (PID 1 inside) is what components join with nsenter."""
        self.holder = subprocess.Popen(
            [
                *("unshare", "--pid", "--fork", "--kill-child", "--mount-proc"),
                *("--net", "--mount", "--propagation", "private"),
                *("sleep", "infinity"),
            ],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a note from unshare when its child is killed
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = children.read_text().split() if children.exists() else []
            if found:
                self.init_pid = int(found[0])
                break
            if self.holder.poll() is not None:
                raise NodeError(f"unshare exited with code {self.holder.returncode}")
            time.sleep(0.01)
        else:
            raise NodeError("unshare started no process within 10 s")
        # A wrong pid here would put the node's mounts and addresses on the host: check that
        # its namespaces are not ours before anything is done in them.
        for kind in ("net", "mnt", "pid"):
            theirs = os.readlink(f"/proc/{self.init_pid}/ns/{kind}")
            if theirs == os.readlink(f"/proc/self/ns/{kind}"):
                raise NodeError(f"the node's {kind} namespace is the host's ({theirs})")

    def _nsenter(self, *, pid: bool = True) -> list[str]:
        return [
            "nsenter",
            f"--target={self.init_pid}",
            "--net",
            "--mount",
            *(["--pid"] if pid else []),
            "--",
        ]

    def _inside(self, *command: str, timeout: float = 60, what: str | None = None) -> str:
        """Run a command inside the node's network and mount namespaces; its stdout. A failure
        is a NodeError saying `what` failed (by default, the command)."""
        result = subprocess.run(
            [*self._nsenter(pid=False), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            what = what or f"{' '.join(command)} failed inside the node"
            raise NodeError(f"{what}: {result.stderr.strip()}")
        return result.stdout

    def _set_up_inside(self) -> None:
        # The node's address on a veth pair whose two ends are both inside (this kernel has no
        # dummy device); the default route makes it the address the kubelet and kube-proxy
        # pick, and gives Service addresses a route. Nothing leaves: node1 goes nowhere.
        for command in (
            "ip link set lo up",
            "ip link add node0 type veth peer name node1",
            f"ip addr add {NODE_IP}/24 dev node0",
            "ip link set node0 up",
            "ip link set node1 up",
            "ip route add default dev node0",
        ):
            self._inside(*command.split())
        # A private /run (containerd's netns mounts, iptables' lock) and the kubelet's kernel
        # settings, both only in this mount namespace.
        self._inside("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
        sysctls = self.workdir / "sysctls"
        sysctls.mkdir()
        for name, value in KUBELET_SYSCTLS.items():
            file = sysctls / name.replace("/", ".")
            file.write_text(f"{value}\n")
            self._inside("mount", "--bind", str(file), f"/proc/sys/{name}")
        # No DNS server (the pods and the components ask none, not the host's), and the node's
        # name in /etc/hosts.
        (self.workdir / "resolv.conf").write_text("")
        (self.workdir / "hosts").write_text(f"127.0.0.1 localhost\n{NODE_IP} {NODE_NAME}\n")
        for name in ("resolv.conf", "hosts"):
            self._inside("mount", "--bind", self._path(name), f"/etc/{name}")
        make_cgroups(self.cgroup_name)

    # -- components --------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return str(self.workdir / name)

    def _run(self, name: str, binary: str, *args: str) -> Component:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as stream:
            try:
                process = subprocess.Popen(
                    [*self._nsenter(), binary, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,  # nsenter and the component: one process group
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise NodeError(f"{name} cannot start: {error}") from None
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def _check_alive(self, component: Component) -> None:
        code = component.process.poll()
        if code is not None:
            raise NodeError(
                f"{component.name} exited with code {code} while starting; its last log "
                f"lines:\n{component.tail()}"
            )

    def _until(self, component: Component, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self._check_alive(component)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                if ready():
                    return
            time.sleep(0.1)
        raise NodeError(
            f"{component.name}: {what} not within {DEADLINE_SECONDS} s; its last log lines:\n"
            f"{component.tail()}"
        )

    def _wait_socket(self, component: Component, path: Path) -> None:
        def listening() -> bool:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(path))
            return True

        self._until(component, f"{path.name} accepting", listening)

    def _wait_http(self, component: Component, url: str) -> None:
        context = ssl.create_default_context(cafile=self._path("pki/ca.crt"))
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})  # noqa: S310 - inside the node

        def ok() -> bool:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310
                return response.status == 200

        self._until(component, f"{url} answering 200", lambda: self.in_netns(ok))

    def _wait_node_ready(self, kubelet: Component) -> None:
        def ready() -> bool:
            got = self.kubectl("get", "node", NODE_NAME, "-o", "json", timeout=10)
            if got.returncode != 0:
                return False
            conditions = json.loads(got.stdout)["status"].get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        self._until(kubelet, "Node Ready", ready)

    def _import_images(self) -> None:
        if self.images is None:
            return
        images = self.images
        # All at once: each import is mostly waiting on the disk.
        with concurrent.futures.ThreadPoolExecutor(len(ARCHIVES)) as pool:
            futures = [
                pool.submit(self.ctr, "images", "import", str(images / name)) for name in IMPORTED
            ]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
        self._import_error = "; ".join(errors)

    def _apiserver_args(self) -> list[str]:
        pki = self.workdir / "pki"
        return [
            str(self.bin_dir / "kube-apiserver"),
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=127.0.0.1",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={API_PORT}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",  # nothing here reaches the API by its Service
            # exec, logs and port-forward: the API server calls the kubelet with this
            # certificate, which the kubelet checks against the CA.
            f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _write_configs(self) -> None:
        self.token = secrets.token_urlsafe(32)
        pki = self.workdir / "pki"
        pki.mkdir()
        make_certificates(pki)
        make_client_certificate(pki, "kubelet-client", "/CN=kube-apiserver/O=system:masters")
        (pki / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        ca = pki / "ca.crt"
        (self.workdir / "inside.kubeconfig").write_text(
            kubeconfig(f"https://127.0.0.1:{API_PORT}", ca, self.token)
        )
        for name in ("pki/tokens.csv", "inside.kubeconfig"):
            (self.workdir / name).chmod(0o600)

        w = self.workdir
        (w / "cni").mkdir()
        (w / "cni" / "10-node.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "node",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "cni0",
                            "isGateway": True,
                            "ipMasq": True,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(w / "cni-ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                },
                indent=2,
            )
        )
        # Debian's containerd 1.6 (config version 2). Every path in the run's folder.
        (w / "containerd.toml").write_text(
            f"""version = 2
root = "{w}/containerd/root"
state = "{w}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{w}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: no process may lower its oom_score_adj, and runc fails
  # when the pause container asks for -998. This keeps each at least the current value.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{w}/cni"
"""
            + "".join(
                f'''  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{name}"]
    endpoint = ["http://{REGISTRY}"]
'''
                for name in MIRRORED
            )
        )
        (w / "kubelet.yaml").write_text(
            f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{w}/containerd.sock
# cgroup v1 here (a hybrid hierarchy): 1.35 and later refuse it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{self.cgroup_name}
failSwapOn: false
# Refuse to start rather than write a host-wide kernel setting (see KUBELET_SYSCTLS).
protectKernelDefaults: true
address: {NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: AlwaysAllow}}
resolvConf: {w}/resolv.conf
podLogsDir: {w}/pod-logs
# The pods' images were imported, not pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}}
"""
        )
        (w / "kube-proxy.yaml").write_text(
            f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {{kubeconfig: {w}/inside.kubeconfig}}
hostnameOverride: {NODE_NAME}
bindAddress: {NODE_IP}
clusterCIDR: {POD_CIDR}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
oomScoreAdj: 0
# No host-wide conntrack setting: leave the limits and timeouts as they are.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
# Pod to Service to a pod on the same bridge: without br_netfilter in this namespace the reply
# would skip conntrack; masquerading every Service connection sends it back through it.
iptables: {{masqueradeAll: true}}
"""
        )

    # -- reaching it from the host -----------------------------------------------------------

    def in_netns(self, function: Callable[..., T], *args: Any) -> T:
        """Call function in a thread inside the node's network namespace (its sockets are
        there: ClusterIPs, pod IPs, the node's 127.0.0.1)."""
        if self._netns_pool is None:
            self._netns_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=32, initializer=_enter_netns, initargs=(self.init_pid,)
            )
        return self._netns_pool.submit(function, *args).result()

    def _start_forwarder(self) -> None:
        """127.0.0.1:<free port> on the host to the API server's 127.0.0.1:6443 inside."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", free_port()))
        listener.listen(64)
        self._forwarder = listener
        port = listener.getsockname()[1]

        def accept() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return  # closed by stop()
                try:
                    upstream = self.in_netns(socket.create_connection, ("127.0.0.1", API_PORT))
                except OSError:
                    client.close()
                    continue
                threading.Thread(target=_relay, args=(client, upstream), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(
            kubeconfig(f"https://127.0.0.1:{port}", self.workdir / "pki" / "ca.crt", self.token)
        )
        self.kubeconfig.chmod(0o600)

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl on the host against this node's API server."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
        )

    def env(self) -> dict[str, str]:
        """An environment in which plain `kubectl` (from the built binaries) talks to this."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def serve_registry(self) -> None:
        """Start a registry inside the node (Debian's docker-registry) that containerd pulls
        from for the MIRRORED registries: images with imagePullPolicy Always need one."""
        config = self.workdir / "registry.yaml"
        config.write_text(
            f"version: 0.1\nlog: {{level: warn}}\nhttp: {{addr: {REGISTRY}}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.workdir / 'registry'}}}}}\n"
        )
        registry = self._run("docker-registry", "docker-registry", "serve", str(config))
        self._wait_http(registry, f"http://{REGISTRY}/v2/")

    def push(self, archive: str, repository: str) -> None:
        """Put one of the images' archives into the node's registry as repository:tag."""
        assert self.images is not None
        self._inside(
            *("skopeo", "copy", "--quiet", "--dest-tls-verify=false"),
            f"docker-archive:{self.images / archive}",
            f"docker://{REGISTRY}/{repository}",
            timeout=DEADLINE_SECONDS,
            what=f"pushing {archive} as {repository}",
        )

    def ctr(self, *args: str) -> str:
        """Run containerd's own client on the node's containerd (namespace k8s.io)."""
        return self._inside(
            *("ctr", f"--address={self._path('containerd.sock')}", "--namespace=k8s.io"),
            *args,
            timeout=DEADLINE_SECONDS,
            what=f"ctr {' '.join(args)}",
        )

    def tag_image(self, source: str, target: str) -> None:
        """Give an imported image a second name, as pushing a new tag to a registry would."""
        self.ctr("images", "tag", "--force", source, target)

    def signal_container(self, container_id: str, signum: int) -> None:
        """Send signum to every process of a container ("containerd://<id>" from a Pod's
        status), found through its cgroup in the node's subtree."""
        bare = container_id.removeprefix("containerd://")
        found = list((CGROUP_ROOT / "pids" / self.cgroup_name).rglob(f"{bare}/cgroup.procs"))
        if not found:
            raise NodeError(f"no cgroup for container {bare}")
        for pid in found[0].read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signum)

    def kubectl_ok(self, *args: str, timeout: float = 180) -> str:
        """kubectl's output; when it fails, a NodeError with what a person would look at."""
        result = self.kubectl(*args, timeout=timeout)
        if result.returncode != 0:
            raise NodeError(
                f"kubectl {' '.join(args)} failed:\n{result.stderr}\n{self.describe()}\n"
                f"{self.logs()}"
            )
        return result.stdout

    def describe(self) -> str:
        """What a person would look at when pods do not come up."""
        pods = self.kubectl("get", "pods", "-A", "-o", "wide").stdout
        events = self.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp").stdout
        return f"pods:\n{pods}\nevents (last 30):\n" + "\n".join(events.splitlines()[-30:])

    def logs(self) -> str:
        """The last lines of every component's log, for a failure message."""
        return "\n".join(f"--- {c.name}\n{c.tail()}" for c in self.components)


def _enter_netns(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/proc/{pid}/ns/net") as netns:
        if libc.setns(netns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the node's network namespace")


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy both ways until both sides have finished, then close both."""
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def make_client_certificate(pki: Path, name: str, subject: str) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True, timeout=60)

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
    (pki / f"{name}.ext").write_text("extendedKeyUsage=clientAuth\n")
    openssl(
        *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext"),
        *("-out", f"{name}.crt"),
    )
    (pki / f"{name}.key").chmod(0o600)


# -- cgroups: the node's own subtree in every v1 hierarchy -------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _hierarchies() -> list[Path]:
    """Every cgroup hierarchy, the empty cgroup2 at `unified` included: runc mirrors each
    container's cgroup there too, so the subtree is removed from it as well."""
    return [p for p in sorted(CGROUP_ROOT.iterdir()) if p.is_dir() and not p.is_symlink()]


def make_cgroups(name: str) -> None:
    """The subtree the kubelet's cgroupRoot names, in every v1 hierarchy (the kubelet uses v1)."""
    for hierarchy in _hierarchies():
        if hierarchy.name == "unified":
            continue
        subtree = hierarchy / name
        subtree.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":  # a new cpuset has no CPUs until given its parent's
            for setting in ("cpuset.cpus", "cpuset.mems"):
                (subtree / setting).write_text((hierarchy / setting).read_text())


def remove_cgroups(name: str) -> None:
    """Remove the subtree, deepest first; any process still in it is killed first."""
    for hierarchy in _hierarchies():
        subtree = hierarchy / name
        if not subtree.exists():
            continue
        folders = sorted((p for p in subtree.rglob("*") if p.is_dir()), reverse=True)
        for folder in [*folders, subtree]:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError):
                    for pid in (folder / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


def remove_stale_runs() -> None:
    """Remove the folders and cgroups of earlier runs whose process is gone (kill -9)."""
    base = Path(tempfile.gettempdir())
    for folder in base.glob(f"{DIR_PREFIX}*"):
        pid_text = folder.name.removeprefix(DIR_PREFIX).partition("-")[0]
        if pid_text.isdigit() and not Path(f"/proc/{pid_text}").exists():
            shutil.rmtree(folder, ignore_errors=True)
    for hierarchy in _hierarchies():
        for subtree in hierarchy.glob(f"{DIR_PREFIX}*"):
            pid_text = subtree.name.removeprefix(DIR_PREFIX)
            if pid_text.isdigit() and not Path(f"/proc/{pid_text}").exists():
                remove_cgroups(subtree.name)


if __name__ == "__main__":
    # Keeps one up until Ctrl-C or SIGTERM (the tests use this to prove nothing is left);
    # --no-images: without importing the images (faster, for that test).
    binaries, archives = node_binaries_dir(), images_dir()
    if binaries is None or archives is None:
        sys.exit("not built: run `make control-plane images`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Node(binaries, None if "--no-images" in sys.argv else archives) as node:
        print(f"ready {os.getpid()} {node.workdir} KUBECONFIG={node.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
