"""One synth, as a fresh process: what bench/synth.py times (and bench/profile_synth.py profiles).

    python bench/synth_target.py cdk8s OUTDIR      an empty chart synthesized with cdk8s alone
                                                   (issue 23's floor for main.py)
    python bench/synth_target.py empty OUTDIR      an empty app that loads cdk8s, cdk8s-plus-27 and
                                                   imports/k8s (issue 14's floor for main.py)
    python bench/synth_target.py bare OUTDIR       an empty app loading cdk8s and cdk8s-plus-27
                                                   only: what main.py loads today (extra row)
    python bench/synth_target.py ours N OUTDIR     N FlaskBackends in one chart
    python bench/synth_target.py naive N OUTDIR    the same N written as plain cdk8s-plus-27 code
    python bench/synth_target.py objects FILE OUTDIR   the objects in FILE (JSON: main.py's output)
                                                   as plain cdk8s.ApiObjects, one patch per field:
                                                   the least an ordinary-object construct costs

The "naive" variant is what a user would write by hand for the four core objects (Deployment
with one container and port, Service, ConfigMap, Secret): no validation, no hardening patches,
no ServiceAccount, PodDisruptionBudget or NetworkPolicy. FlaskBackend emits 7 objects per
backend with its defaults, so the ratio prices everything the construct adds.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lib")]

IMAGE = "registry.example.com/api:1.4.2"
CONFIG = {"LOG_LEVEL": "info", "ENVIRONMENT": "production"}
SECRETS = {"SECRET_KEY": "not-a-real-secret-only-for-the-benchmark"}


def add_ours(chart: object, count: int) -> None:
    from flask_backend import FlaskBackend

    for i in range(count):
        FlaskBackend(
            chart,  # type: ignore[arg-type]
            f"api-{i}",
            image=IMAGE,
            config=CONFIG,
            secrets=SECRETS,
        )


def add_naive(chart: object, count: int) -> None:
    import cdk8s_plus_27 as kplus

    for i in range(count):
        name = f"api-{i}"
        config = kplus.ConfigMap(chart, f"{name}-config", data=CONFIG)  # type: ignore[arg-type]
        secret = kplus.Secret(chart, f"{name}-secret", string_data=SECRETS)  # type: ignore[arg-type]
        deployment = kplus.Deployment(
            chart,  # type: ignore[arg-type]
            f"{name}-deployment",
            containers=[
                kplus.ContainerProps(
                    image=IMAGE,
                    ports=[kplus.ContainerPort(number=8000)],
                    env_from=[kplus.Env.from_config_map(config), kplus.Env.from_secret(secret)],
                )
            ],
        )
        deployment.expose_via_service(
            name=name, ports=[kplus.ServicePort(port=80, target_port=8000)]
        )


def add_objects(chart: object, documents: list[dict]) -> None:
    import cdk8s

    for index, document in enumerate(documents):
        metadata = document["metadata"]
        api_object = cdk8s.ApiObject(
            chart,  # type: ignore[arg-type]
            f"o{index}",
            api_version=document["apiVersion"],
            kind=document["kind"],
            metadata=cdk8s.ApiObjectMetadata(
                name=metadata["name"],
                labels=metadata.get("labels"),
                annotations=metadata.get("annotations"),
            ),
        )
        fields = [k for k in document if k not in ("apiVersion", "kind", "metadata")]
        if fields:
            api_object.add_json_patch(*(cdk8s.JsonPatch.add(f"/{k}", document[k]) for k in fields))


def main(argv: list[str]) -> None:
    kind, outdir = argv[0], argv[-1]
    count = int(argv[1]) if kind not in ("empty", "bare", "cdk8s", "objects") else 0

    import cdk8s

    if kind in ("cdk8s", "objects"):
        app = cdk8s.App(outdir=outdir)
        chart = cdk8s.Chart(app, "empty", disable_resource_name_hashes=True)
        if kind == "objects":
            import json

            add_objects(chart, json.loads(Path(argv[1]).read_text(encoding="utf-8")))
        app.synth()
        return
    import cdk8s_plus_27  # noqa: F401 - loading its jsii assembly is part of the floor

    if kind == "empty":
        # The floor issue 14 defines: what this layout loads, imports/k8s (the entry
        # script's generated bindings) included, though main.py itself no longer needs it.
        from imports import k8s  # noqa: F401

    app = cdk8s.App(outdir=outdir)
    if count:
        chart = cdk8s.Chart(app, "bench", disable_resource_name_hashes=True)
        {"ours": add_ours, "naive": add_naive}[kind](chart, count)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1:])
