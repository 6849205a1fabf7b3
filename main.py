#!/usr/bin/env python3
"""Synthesize the backend tier into dist/: settings -> chart -> synth.

    python main.py --help     # every setting is a flag and an environment variable

The settings are tier_settings.py's (flags, environment, env file, profiles); the chart is
`build` below, a Namespace and one FlaskBackend; `synthesize` writes it with the package's
write_app. Without SECRET_KEY, the first synth keeps a generated one in .env
(flask_backend.envfile), so that every synth writes the same dist/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from flask_backend.envfile import SettingError, keep_secret_key
from tier_settings import (
    DEFAULT_ENV_FILE,
    DEFAULT_IMAGE,
    DEV_REQUESTS,
    LOG_LEVELS,
    SECRET_KEYS,
    SETTINGS,
    Tier,
    check_printable,
    env_file_read,
    parse_args,
    resolve,
    shadowed,
)

if TYPE_CHECKING:
    import cdk8s

__all__ = [
    "DEFAULT_IMAGE",
    "LOG_LEVELS",
    "SECRET_KEYS",
    "SETTINGS",
    "SettingError",
    "build",
    "keep_secret_key",
    "main",
    "parse_args",
    "resolve",
    "synthesize",
]


def build(tier: Tier, outdir: str) -> cdk8s.App:
    import cdk8s

    from flask_backend import (
        Autoscaling,
        FlaskBackend,
        Ingress,
        Metrics,
        Migrations,
        Resources,
        RestrictedNamespace,
    )

    app = cdk8s.App(outdir=outdir)
    chart = cdk8s.Chart(app, "backend", namespace=tier.namespace, disable_resource_name_hashes=True)
    RestrictedNamespace(chart)
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
        # The app image's migration command, once per release; pods wait until it is done. No
        # TTL: the deploy's prune (README, Upgrades and uninstall) removes past releases' Jobs,
        # and a TTL would delete the current one, which `kubectl diff` then shows and the next
        # apply creates and runs again.
        migrations=Migrations(ttl_seconds_after_finished=None) if tier.migrations else None,
        metrics=Metrics(),  # the app image serves them (app/backend_api/metrics.py)
        resources=Resources(**DEV_REQUESTS) if tier.profile == "dev" else None,
        ingress=Ingress(host=tier.ingress_host, tls_secret=tier.tls_secret)
        if tier.ingress_host
        else None,
        part_of="three-tier-app",
    )
    return app


def synthesize(tier: Tier, outdir: Path) -> tuple[cdk8s.App, list[Path], Tier]:
    """The backend tier into outdir (flask_backend.write_app); also returns the tier as
    written (with the SECRET_KEY kept in .env, when it was new)."""
    from flask_backend import write_app

    written = tier

    def make_app(staging: str) -> cdk8s.App:
        nonlocal written
        app = build(tier, staging)  # the constructs validate here: a bad setting keeps nothing
        if tier.new_secret_key_file is None or tier.secrets is None:
            return app
        new_key = tier.secrets["SECRET_KEY"]
        key, one_off = keep_secret_key(tier.new_secret_key_file, new_key)
        written = replace(
            tier,
            secrets={**tier.secrets, "SECRET_KEY": key},
            one_off_secret_key=one_off,
            new_secret_key_file=None,
        )
        # A first synth running at the same time kept its key first: build with that one.
        return app if key == new_key else build(written, staging)

    app, files = write_app(make_app, outdir)
    return app, files, written


def summary(app: cdk8s.App, files: Sequence[Path], tier: Tier) -> tuple[list[str], list[str]]:
    """What was written, from the app in memory (reading the YAML back cost 0.1 s)."""
    lines = []
    for path, chart in zip(files, app.charts, strict=True):  # main.py: one chart, one file
        objects = chart.to_json()
        lines.append(f"wrote {path} ({len(objects)} objects)")
        lines += [f"  {o['kind']}/{o['metadata']['name']}" for o in objects]
    warnings = []
    if tier.one_off_secret_key:
        warnings.append(
            f"warning: {tier.one_off_secret_key}; generated a random one for this synth "
            "(sessions reset and pods roll on every synth). Pin it with SECRET_KEY=... in the "
            "environment or the env file, or use --existing-secret NAME."
        )
    if ":" in tier.image.rpartition("/")[2] and "@" not in tier.image:
        warnings.append(
            f"warning: image {tier.image!r} is pinned by a mutable tag; a digest "
            "(@sha256:...) guarantees every pod runs the same build."
        )
    return lines, warnings


def secret_in_git(files: Sequence[Path], tier: Tier) -> list[str]:
    """A warning when the output holds a Secret and git would commit it (CDK8S_OUTDIR=deploy/out
    in a repository that does not ignore it)."""
    from flask_backend.output import committed_by_git

    if tier.secrets is None:
        return []
    committed = committed_by_git(files)
    if not committed:
        return []
    return [
        f"warning: {committed[0]} holds a Secret, and git would commit it: it is in a git work "
        "tree and not ignored. Add its folder to .gitignore, or use --existing-secret NAME."
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    outdir = Path(os.environ.get("CDK8S_OUTDIR") or "dist")
    from flask_backend import OutputError
    from flask_backend.output import check_outdir

    try:
        check_outdir(outdir)  # a refused path fails before the settings are resolved
        tier = resolve(args, os.environ, default_env_file=DEFAULT_ENV_FILE)
        check_printable(tier)
        app, files, tier = synthesize(tier, outdir)
        lines, warnings = summary(app, files, tier)
        warnings += secret_in_git(files, tier)
        warnings += shadowed(env_file_read(args, os.environ, DEFAULT_ENV_FILE), os.environ)
    except (ValueError, TypeError, OutputError) as error:
        # Settings and the construct validate before anything is written: one line, no traceback.
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the staging directory is gone (write_app), dist/ is whole
        return 130
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        # `python main.py | head -1`: the reader left early; dist/ is written all the same.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for warning in warnings:
        print(warning, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
