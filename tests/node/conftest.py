"""The node fixtures: the images `make images` built, and one running node a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.node import Node, images_dir, missing_tools, node_binaries_dir
from tests.support import unavailable

HOW_TO_GET_IMAGES = (
    "the node tests need the images: run `make images` (buildah and mmdebstrap from apt, as "
    ".ci/run installs them; root)"
)


@pytest.fixture(scope="session")
def images() -> Path:
    found = images_dir()
    if found is None:
        unavailable(HOW_TO_GET_IMAGES)
    return found


@pytest.fixture(scope="session")
def node(images: Path) -> Iterator[Node]:
    """One running node for the session; stopped at its end, also after failures and Ctrl-C
    (pytest runs finalizers then), and killed with the test process otherwise."""
    binaries = node_binaries_dir()
    missing = missing_tools()
    if binaries is None or missing:
        reason = (
            f"the node tests need Debian's {', '.join(missing)} (.ci/run installs them)"
            if missing
            else "the node tests need kubelet, kube-proxy and kube-scheduler: "
            "run `make control-plane`"
        )
        unavailable(reason)
    with Node(binaries, images) as running:
        yield running
