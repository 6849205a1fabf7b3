"""The images the node tests run.

They come from scripts/build-images (`make images`): docker archives of the image app/Dockerfile
builds, of PostgreSQL, and of the pod sandbox's pause container.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES_SCRIPT = ROOT / "scripts" / "build-images"
ARCHIVES = ("api.tar", "postgresql.tar", "pause.tar")


def images_dir() -> Path | None:
    """Where `make images` put the archives for the current app/ and tools/images, or None."""
    try:
        result = subprocess.run(
            [str(IMAGES_SCRIPT), "--where"], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return None
    path = Path(result.stdout.strip())
    if result.returncode != 0 or not all((path / name).is_file() for name in ARCHIVES):
        return None
    return path
