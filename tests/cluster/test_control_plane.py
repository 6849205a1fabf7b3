"""The control plane fixture itself: bad days end in one clear message and leave nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import require_binaries
from tests.cluster.controlplane import BINARIES, DIR_PREFIX, ControlPlane, ControlPlaneError
from tests.support import ROOT


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return require_binaries()


def processes_mentioning(text: str) -> list[int]:
    """pids whose command line names `text` (a run's own folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and entry.name != str(os.getpid()):
                found.append(int(entry.name))
    return found


def start_holder(base: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that keeps a control plane up (python -m tests.cluster.controlplane)."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.controlplane", str(base)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()  # "ready <pid> <workdir> ...", or "" if it died
    if not line.startswith("ready "):
        holder.kill()
        raise AssertionError(f"the holder did not start: {line}{holder.communicate(timeout=30)[1]}")
    workdir = Path(line.split()[2])
    assert len(processes_mentioning(str(workdir))) == 3  # etcd, apiserver, controller manager
    return holder, workdir


def wait_gone(workdir: Path) -> list[int]:
    deadline = time.monotonic() + 15
    while (left := processes_mentioning(str(workdir))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_ctrl_c_stops_every_component_and_removes_the_data(bin_dir, tmp_path):
    holder, workdir = start_holder(tmp_path)

    holder.send_signal(signal.SIGINT)
    try:
        holder.communicate(timeout=30)
    finally:  # a holder that ignored Ctrl-C must not keep its control plane up
        if holder.poll() is None:
            holder.kill()
            holder.communicate(timeout=30)

    assert wait_gone(workdir) == []
    assert not workdir.exists()


def test_a_failing_test_still_stops_the_control_plane(bin_dir, tmp_path):
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(
        "from tests.cluster.conftest import control_plane  # noqa: F401\n"
        "def test_fails(control_plane):\n"
        "    print('WORKDIR', control_plane.workdir)\n"
        "    assert False\n"
    )

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    (workdir,) = (
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("WORKDIR")
    )
    assert wait_gone(Path(workdir)) == []
    assert not Path(workdir).exists()


def test_a_killed_run_leaves_no_process_and_its_folder_goes_next_time(bin_dir, tmp_path):
    holder, workdir = start_holder(tmp_path)

    holder.kill()  # kill -9: no finalizer runs; the kernel's parent-death signal does the work
    holder.communicate(timeout=30)

    assert wait_gone(workdir) == []
    assert workdir.exists()  # stale, until the next run starts
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with taken, pytest.raises(ControlPlaneError):
        ControlPlane(bin_dir, base_dir=tmp_path, ports={"etcd": taken.getsockname()[1]}).start()
    assert list(tmp_path.glob(f"{DIR_PREFIX}*")) == []


def test_a_taken_port_is_named_and_nothing_is_left(bin_dir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        plane = ControlPlane(bin_dir, base_dir=tmp_path, ports={"kube-apiserver": port})

        with pytest.raises(
            ControlPlaneError, match=f"kube-apiserver cannot start: port {port} is already taken"
        ):
            plane.start()

    assert list(tmp_path.iterdir()) == []


def test_a_binary_that_fails_shows_its_last_log_lines(bin_dir, tmp_path):
    broken = tmp_path / "bin"
    broken.mkdir()
    for name in BINARIES:
        (broken / name).symlink_to(bin_dir / name)
    (broken / "etcd").unlink()
    (broken / "etcd").write_text("#!/bin/sh\necho 'etcd: cannot open the data dir' >&2\nexit 3\n")
    (broken / "etcd").chmod(0o755)
    base = tmp_path / "runs"
    base.mkdir()

    with pytest.raises(ControlPlaneError) as raised:
        ControlPlane(broken, base_dir=base).start()

    message = str(raised.value)
    assert message.startswith("etcd exited with code 3 while starting")
    assert message.endswith("etcd: cannot open the data dir")
    assert list(base.iterdir()) == []


def test_the_pinned_crds_install_and_serve(control_plane):
    control_plane.install_crds(
        "monitoring.coreos.com_servicemonitors.yaml",
        "gateway.networking.k8s.io_httproutes.yaml",
    )

    for resource in (
        "servicemonitors.monitoring.coreos.com",
        "httproutes.gateway.networking.k8s.io",
    ):
        assert control_plane.kubectl("get", resource, "-A").returncode == 0
