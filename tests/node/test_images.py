"""The images `make images` built with buildah: app/Dockerfile's image keeps its contract, on a
base that has what the official python image gives the Dockerfile and the manifests."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.app.test_dockerignore import tracked_files_under
from tier_settings import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]
PLAIN_APP_DIR = ROOT / "tests" / "plain_flask"


def manifest_and_config(archive: Path) -> tuple[dict, dict]:
    with tarfile.open(archive) as outer:
        (manifest,) = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    return manifest, config


def files_in(archive: Path) -> set[str]:
    """Every path in the image's layers (a docker archive: one tar per layer)."""
    found = set()
    with tarfile.open(archive) as outer:
        (manifest,) = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                found |= {name.removeprefix("./") for name in inner.getnames()}
    return found


def test_api_image_is_tagged_and_runs_gunicorn_as_10001_from_app(images: Path) -> None:
    manifest, config = manifest_and_config(images / "api.tar")
    assert manifest["RepoTags"] == [f"docker.io/library/{DEFAULT_IMAGE}"]  # what main.py runs
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Cmd"][0] == "gunicorn"


def test_api_image_holds_the_code_and_the_migrations(images: Path) -> None:
    files = files_in(images / "api.tar")
    for source in ("backend_api", "migrations"):
        for path in tracked_files_under(source):
            assert f"app/{path}" in files
    assert "app/gunicorn.conf.py" in files
    # What the base gives: `python` (the Job and the init container run it), and gunicorn
    # installed by pip where the official image's pip puts it.
    assert "usr/bin/python" in files
    assert "usr/local/bin/gunicorn" in files


def test_postgresql_image_runs_as_999_and_pause_is_one_static_binary(images: Path) -> None:
    _, postgresql = manifest_and_config(images / "postgresql.tar")
    assert postgresql["config"]["User"] == "999:999"
    _, pause = manifest_and_config(images / "pause.tar")
    assert pause["config"]["Entrypoint"] == ["/pause", "-P"]
    assert files_in(images / "pause.tar") == {"pause"}


def test_plain_flask_image_is_the_example_s_and_pins_the_project_s_versions(images: Path) -> None:
    # examples/plain_flask.py's image, from tests/plain_flask (not app/): one module, gunicorn
    # as 10001, the versions of Flask and gunicorn that the project pins.
    manifest, config = manifest_and_config(images / "hello.tar")
    example = (ROOT / "examples" / "plain_flask.py").read_text()
    assert f'IMAGE = "{manifest["RepoTags"][0]}"' in example
    assert config["config"]["User"] == "10001"
    assert config["config"]["Cmd"] == ["gunicorn", "app:app"]
    assert "srv/hello/app.py" in files_in(images / "hello.tar")
    pins = (PLAIN_APP_DIR / "requirements.txt").read_text().split()
    assert set(pins) <= set((ROOT / "app" / "requirements.txt").read_text().split())
