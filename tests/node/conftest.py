"""The node fixtures: the images `make images` built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.node.node import images_dir

HOW_TO_GET_IMAGES = (
    "the node tests need the images: run `make images` (buildah and mmdebstrap from apt, as "
    ".ci/run installs them; root)"
)


@pytest.fixture(scope="session")
def images() -> Path:
    found = images_dir()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {HOW_TO_GET_IMAGES}")
        pytest.skip(HOW_TO_GET_IMAGES)
    return found
