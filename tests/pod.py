"""Run the app the way the synthesized pod runs it, on this machine, in a bubblewrap sandbox.

Everything comes from the manifests and the Dockerfile, nothing from the test's own knowledge:
the command (the container's, else the image's CMD) in the image's WORKDIR, the env and envFrom
resolved from the synthesized ConfigMap and Secret, the Secret's files at its mount path with its
mode, the UID/GID of the securityContext with every capability dropped, and a read-only root
with only the declared emptyDirs writable. The image's Python packages are this project's .venv
(the same pins, see test_agreement.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, by_kind, secret_values

DOCKERFILE = ROOT / "app" / "Dockerfile"

# A module whose pods serve on the manifest's own ports (8000, 9102) rather than free ones: on
# this machine's one loopback two such pods cannot run at once, so pytest-xdist runs every
# module so marked on one worker (the Makefile's `--dist loadgroup`, tests/conftest.py).
ON_THE_MANIFEST_PORTS = pytest.mark.xdist_group("pods-on-the-manifest-ports")


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the final stage, continuation lines joined."""
    text = path.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            pairs = []  # only the final stage makes the image
        pairs.append((instruction.upper(), rest.strip()))
    return pairs


@dataclass
class Image:
    workdir: str
    cmd: list[str]
    env: dict[str, str]
    user: str
    exposed: list[int] = field(default_factory=list)

    @classmethod
    def from_dockerfile(cls, path: Path = DOCKERFILE) -> Image:
        workdir, cmd, env, user, exposed = "/", [], {}, "root", []
        for instruction, rest in dockerfile_instructions(path):
            if instruction == "WORKDIR":
                workdir = rest
            elif instruction == "CMD":
                cmd = json.loads(rest)  # exec form only: gunicorn must be PID 1
            elif instruction == "ENV":
                for assignment in shlex.split(rest):
                    key, _, value = assignment.partition("=")
                    env[key] = value
            elif instruction == "USER":
                user = rest
            elif instruction == "EXPOSE":
                exposed += [int(p.split("/")[0]) for p in rest.split()]
        return cls(workdir, cmd, env, user, exposed)


def quantity_millicores(value: str) -> int:
    return int(value[:-1]) if value.endswith("m") else int(float(value) * 1000)


@dataclass
class PodProcess:
    process: subprocess.Popen[bytes]
    port: int | None  # None: a container that serves nothing (an init container, a Job's)
    log_path: Path
    metrics_port: int | None = None  # where gunicorn's master serves /metrics, when it does

    def url(self, path: str, port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.port}{path}"

    def get(self, path: str, port: int | None = None) -> tuple[int, dict[str, Any]]:
        return self.request(path, port=port)

    def request(
        self, path: str, body: Any = None, *, port: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        """GET, or POST when there is a JSON body; (status, parsed JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a URL on 127.0.0.1 the test built
            self.url(path, port), data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait(self, timeout: float) -> int:
        """The exit code of a container that runs to completion (a Job's, an init container)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.logs()}") from None

    def log_lines(self) -> list[dict[str, Any]]:
        """The container's stdout as JSON objects; a line that is not JSON fails the test."""
        return [json.loads(line) for line in self.logs().splitlines() if line.strip()]

    def wait_until_started(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the pod's process exited {self.process.returncode}:\n{self.logs()}"
                )
            try:
                if self.get(path)[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} did not answer 200 within {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def gunicorn_master(self) -> int:
        """Host pid of the container's main process (gunicorn's master), below bwrap."""
        for pid in descendants(self.process.pid):
            parent = parent_pid(pid)
            if is_gunicorn(pid) and not is_gunicorn(parent):
                return pid
        raise AssertionError(f"no gunicorn process below the sandbox:\n{self.logs()}")

    def kill(self) -> None:
        """Kill the whole sandbox and wait until its port is free again (bounded)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.port is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the sandbox still holds port {self.port} 10 s after SIGKILL")

    def stop(self, timeout: float) -> int:
        """SIGTERM to the main process, as the kubelet sends it after preStop; its exit code."""
        os.kill(self.gunicorn_master(), signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def parent_pid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[1])


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(parent_pid(int(entry.name)), []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo += children.get(pid, [])
    return found


def is_gunicorn(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "gunicorn"
    except OSError:
        return False


def bwrap_available() -> str | None:
    """Why the sandbox cannot be made here, or None when it can."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--share-net", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {probe.stderr.strip()}"
    return None


def require_sandbox() -> None:
    """Skip the calling test when bubblewrap cannot sandbox here; under CI=true, fail instead."""
    reason = bwrap_available()
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the pod sandbox tests: {reason}")
    if reason:
        pytest.skip(f"{reason}; install bubblewrap to run the app the way the pod does")


def ro_bind(source: str, destination: str) -> list[str]:
    """A read-only bind whose parent folders are world-readable, as in an image (bwrap would
    create them 0700, unreadable for the pod's user)."""
    parents = list(Path(destination).parents)[::-1][1:]  # without "/"
    return [a for p in parents for a in ("--perms", "0755", "--dir", str(p))] + [
        "--ro-bind",
        source,
        destination,
    ]


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # The interpreter the venv was made from, and the venv (the image's site-packages).
    for prefix in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}:
        if not prefix.startswith("/usr/"):
            args += ro_bind(prefix, prefix)
    return args


def start_pod(
    documents: list[dict[str, Any]],
    workdir: Path,
    *,
    kind: str = "Deployment",
    container_name: str | None = None,
    port: int | None = None,
    image: Image | None = None,
    app_dir: Path = ROOT / "app",
) -> PodProcess:
    """Start a container of the Deployment's (or the Job's) pod the way the kubelet would,
    inside bubblewrap: by default the pod's only container; ``container_name`` picks another,
    an init container included. ``port`` moves a serving container to another port (PORT and
    the port the test reaches): pods sharing this machine's loopback cannot all have 8000,
    where in a cluster each has an IP of its own. ``image`` and ``app_dir`` (its files, at its
    workdir) run another image than app/Dockerfile's."""
    image = image or Image.from_dockerfile()
    pod = by_kind(documents, kind)["spec"]["template"]["spec"]
    if container_name is None:
        (container,) = pod["containers"]
    else:
        (container,) = (
            c
            for c in pod["containers"] + pod.get("initContainers", [])
            if c["name"] == container_name
        )
    config_maps = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    uid, gid = context["runAsUser"], context["runAsGroup"]
    fs_group = pod.get("securityContext", {}).get("fsGroup", gid)

    env = dict(image.env)
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = "/nonexistent"
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = config_maps[source["configMapRef"]["name"]].get("data", {})
        else:
            data = secret_values(secrets[source["secretRef"]["name"]])
        env.update({prefix + key: value for key, value in data.items()})
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            # limits.cpu or requests.cpu, as the kubelet resolves them. (limits.cpu of a
            # container without a CPU limit would be the node's CPU: a KeyError here.)
            field_ref = variable["valueFrom"]["resourceFieldRef"]
            kind, _, resource = field_ref["resource"].partition(".")
            assert (resource, field_ref["divisor"]) == ("cpu", "1m")
            cpu = container["resources"][kind]["cpu"]
            env[variable["name"]] = str(quantity_millicores(cpu))

    if port is not None:
        env["PORT"] = str(port)
        if "METRICS_PORT" in env:
            env["METRICS_PORT"] = str(_free_port())

    # Every namespace but the network (the test reaches the port on loopback) and, as root,
    # the user namespace (so setpriv below can really become the pod's user).
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # The image's files are bound after the pod's volumes: a checkout under /tmp must not be
    # hidden by the pod's empty /tmp.
    image_mounts = [*_system_mounts(), *ro_bind(str(app_dir), image.workdir)]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            assert volume["emptyDir"]["medium"] == "Memory", "only memory-backed emptyDirs"
            size = str(volume["emptyDir"]["sizeLimit"]).removesuffix("Mi")
            args += [
                "--perms",
                "1777",
                "--size",
                str(int(size) * 2**20),
                "--tmpfs",
                mount["mountPath"],
            ]
        elif "secret" in volume:
            secret = secrets[volume["secret"]["secretName"]]
            folder = Path(tempfile.mkdtemp(dir=workdir))
            for key, value in secret_values(secret).items():
                (folder / key).write_text(value)
                os.chmod(folder / key, volume["secret"].get("defaultMode", 0o644))
                if os.geteuid() == 0:
                    os.chown(folder / key, 0, fs_group)  # what fsGroup does on a real node
            os.chmod(folder, 0o755)  # noqa: S103 - a secret volume dir is world-listable
            args += ro_bind(str(folder), mount["mountPath"])
        else:
            raise AssertionError(f"the sandbox does not model volume {volume}")
    if not context.get("readOnlyRootFilesystem"):
        raise AssertionError("the manifest does not ask for a read-only root filesystem")
    args += image_mounts
    args += ["--remount-ro", "/", "--chdir", container.get("workingDir", image.workdir)]
    args += ["--clearenv"] + [a for k, v in env.items() for a in ("--setenv", k, v)]

    command = container.get("command", []) + container.get("args", []) or image.cmd
    if os.geteuid() == 0:
        # Really become the pod's user, with no capabilities left: file permissions apply.
        command = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            # A new uid clears the parent-death signal bwrap set: ask again, so that a killed
            # test run leaves no server behind.
            "--pdeathsig=KILL",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            *command,
        ]
    else:
        args += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    declared = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if port is None and declared:
        port = declared["http"]
    if port is not None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise AssertionError(
                    f"port {port} is already taken on this machine: stop that server"
                )
    log_path = Path(tempfile.mkstemp(dir=workdir, prefix=f"{container['name']}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["bwrap", *args, *command], stdout=log, stderr=subprocess.STDOUT, env={}
        )
    metrics_port = int(env["METRICS_PORT"]) if "METRICS_PORT" in env else None
    return PodProcess(process, port, log_path, metrics_port)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
