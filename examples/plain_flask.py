#!/usr/bin/env python3
"""A plain Flask image, not this repository's app: one /healthz, no metrics, settings from
plain variable names, its secret as a variable.

    python examples/plain_flask.py  # writes examples/dist/plain-flask/

The image is what `pip install flask gunicorn` and a one-file app make: `gunicorn app:app`
binds 0.0.0.0:$PORT when PORT is set, so it serves on the port the backend gives it. The app
reads GREETING and SECRET_KEY from its environment (`os.environ`), not FLASK_-prefixed names
or files. Three props say so (README: "Bring your own image"); every hardened default stays.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cdk8s import App, Chart

from flask_backend import FlaskBackend, Probes, RestrictedNamespace, write_app_or_exit

IMAGE = "registry.example.com/team/hello:1.0.0"


def build(app: App) -> Chart:
    chart = Chart(app, "hello", namespace="hello", disable_resource_name_hashes=True)
    RestrictedNamespace(chart)
    FlaskBackend(
        chart,
        "hello",
        image=IMAGE,
        probes=Probes.one_path("/healthz"),  # one health endpoint for all three probes
        env_prefix="",  # config keys are the variable names: GREETING
        secrets_as_env=True,  # SECRET_KEY as a variable, not a file in /run/secrets
        config={"GREETING": "hello"},
        # A real deployment pins the key (SECRET_KEY_HELLO=...); a demo synth may use a random one.
        secrets={"SECRET_KEY": os.environ.get("SECRET_KEY_HELLO") or secrets.token_urlsafe(48)},
    )
    return chart


def make_app(outdir: str) -> App:
    app = App(outdir=outdir)
    build(app)
    return app


if __name__ == "__main__":
    # $CDK8S_OUTDIR, else beside the examples: main.py's dist/ is replaced by each `make synth`.
    here = Path(__file__).resolve().parent
    outdir = os.environ.get("CDK8S_OUTDIR") or str(here / "dist" / "plain-flask")
    write_app_or_exit(make_app, outdir)
    print(f"wrote {outdir}")
