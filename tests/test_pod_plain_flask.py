"""Any Flask image, not just this repository's: a plain Flask app (written here, not app/)
with one /healthz, no metrics, settings from plain variable names and its secret as a
variable, deployed with the few props README's "Bring your own image" names, runs as the pod
the manifest describes (tests/pod.py: bubblewrap, the pod's user, read-only root)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flask_backend import FlaskBackend, Probes
from tests.pod import Image, _free_port, start_pod
from tests.support import FAKE_SECRETS, container, synth, validate_strict
from tests.test_pod_sandbox import sandbox  # noqa: F401 - the fixture: skip without bubblewrap

pytestmark = pytest.mark.usefixtures("sandbox")

# What a Flask tutorial ends with: one module, settings read from the environment as they are,
# and its image (tests/plain_flask/Dockerfile, which the node tests run): `pip install flask
# gunicorn`, the module, `CMD ["gunicorn", "app:app"]` as user 10001.
PLAIN_APP_DIR = Path(__file__).with_name("plain_flask")
PLAIN_IMAGE = Image(workdir="/srv/hello", cmd=["gunicorn", "app:app"], env={}, user="10001")


def plain_app(folder: Path) -> Path:
    folder.mkdir()
    shutil.copyfile(PLAIN_APP_DIR / "app.py", folder / "app.py")
    os.chmod(folder / "app.py", 0o644)
    os.chmod(folder, 0o755)  # noqa: S103 - an image's files are world-readable
    return folder


def test_a_plain_flask_image_deploys_with_three_props_and_serves(tmp_path: Path) -> None:
    # Given the plain app and the chart README's "Bring your own image" shows
    documents = synth(
        lambda chart: FlaskBackend(
            chart,
            "hello",
            image="registry.example.com/team/hello:1.0.0",
            probes=Probes.one_path("/healthz"),
            env_prefix="",
            secrets_as_env=True,
            config={"GREETING": "hello"},
            secrets={"SECRET_KEY": FAKE_SECRETS["SECRET_KEY"]},
        )
    )
    validate_strict(documents)
    app = container(documents)
    assert {app[f"{k}Probe"]["httpGet"]["path"] for k in ("startup", "readiness", "liveness")} == {
        "/healthz"
    }
    assert [p["name"] for p in app["ports"]] == ["http"]  # no metrics port nothing serves

    # When its pod runs as the manifest says
    pod = start_pod(
        documents,
        tmp_path,
        image=PLAIN_IMAGE,
        app_dir=plain_app(tmp_path / "hello"),
        port=_free_port(),
    )
    try:
        pod.wait_until_started("/healthz")
        status, body = pod.get("/")
    finally:
        pod.kill()

    # Then it serves, with its setting and its secret under their plain names
    assert status == 200, pod.logs()
    assert body == {"greeting": "hello", "key_length": len(FAKE_SECRETS["SECRET_KEY"])}
