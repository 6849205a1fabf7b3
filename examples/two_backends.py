#!/usr/bin/env python3
"""Two Flask APIs in one chart: a public API that autoscales, and an internal admin API.

    .venv/bin/python examples/two_backends.py  # writes examples/dist/two-backends/

The admin API runs one pod (so it gets no PodDisruptionBudget: a budget on one pod would block
node drains) and only the `ops` namespace may reach it. The public API scales from 2 to 10 pods
on CPU. Each reads its SECRET_KEY from the environment at synth time (SECRET_KEY_PUBLIC,
SECRET_KEY_ADMIN), as main.py does; without one, a random key does for a demo.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import cdk8s

from flask_backend import (
    Autoscaling,
    FlaskBackend,
    Metrics,
    NetworkPolicyOptions,
    OutputError,
    RestrictedNamespace,
    write_app,
)

IMAGE = "registry.example.com/shop/api:1.4.2"


def secret_key(name: str) -> str:
    # A real deployment pins the key (SECRET_KEY_PUBLIC=...); a demo synth may use a random one.
    return os.environ.get(f"SECRET_KEY_{name.upper()}") or secrets.token_urlsafe(48)


def build(app: cdk8s.App) -> cdk8s.Chart:
    chart = cdk8s.Chart(app, "apis", namespace="apis", disable_resource_name_hashes=True)
    # The namespace too, so `kubectl apply -f` works on an empty cluster in one pass.
    RestrictedNamespace(chart)
    FlaskBackend(
        chart,
        "public-api",
        image=IMAGE,
        config={"LOG_LEVEL": "info", "RATE_LIMIT": "100/minute"},
        secrets={"SECRET_KEY": secret_key("public")},
        autoscaling=Autoscaling(min_replicas=2, max_replicas=10),
        metrics=Metrics(),  # this repository's app image serves them
        part_of="shop",
    )
    FlaskBackend(
        chart,
        "admin-api",
        image=IMAGE,
        replicas=1,
        config={"LOG_LEVEL": "debug", "ADMIN_ENABLED": "true"},
        secrets={"SECRET_KEY": secret_key("admin")},
        network_policy=NetworkPolicyOptions(ingress_namespaces=("ops",)),
        metrics=Metrics(),
        part_of="shop",
    )
    return chart


def make_app(outdir: str) -> cdk8s.App:
    app = cdk8s.App(outdir=outdir)
    build(app)
    return app


if __name__ == "__main__":
    # $CDK8S_OUTDIR, else beside the examples: main.py's dist/ is replaced by each `make synth`.
    here = Path(__file__).resolve().parent
    outdir = Path(os.environ.get("CDK8S_OUTDIR") or here / "dist" / "two-backends")
    try:
        write_app(make_app, outdir)
    except OutputError as error:  # a refused or unwritable outdir: one line, no traceback
        sys.exit(f"{Path(__file__).name}: error: {error}")
    print(f"wrote {outdir}")
