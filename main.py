#!/usr/bin/env python3
"""Synthesize the backend tier (Namespace + FlaskBackend) into dist/.

Every setting is a flag and an environment variable of the same name (--replicas / REPLICAS);
a flag wins over the environment, which wins over the env file (--env-file, else .env if there
is one). `python main.py --help` lists them. Secret values (SECRET_KEY, DATABASE_URL) come only
from the environment or the env file; without SECRET_KEY, the first synth keeps a generated one
in .env, so that every synth writes the same dist/.

The building blocks (RestrictedNamespace, write_app, jsii's Node) are the package's: main.py
wires the settings to them and imports nothing else (lazily: `--help` needs no cdk8s).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import cdk8s

PROJECT_VERSION = "0.1.0"
DEFAULT_IMAGE = f"flask-backend-api:{PROJECT_VERSION}"  # what `docker build app` is tagged as
SECRET_KEYS = ("SECRET_KEY", "DATABASE_URL")  # read from the environment only, never from flags
# What the app accepts at boot (app/backend_api/config.py; main.py may not import app/, a test
# holds the two equal): refused here, exit 2, rather than pods in CrashLoopBackOff.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DATABASE_URL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


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
    Setting(
        "ingress-host",
        "host name of an Ingress to the Service, e.g. api.example.com (default: none, no Ingress)",
    ),
    Setting(
        "tls-secret",
        "name of the kubernetes.io/tls Secret for --ingress-host, e.g. made by cert-manager "
        "(default: none, plain HTTP)",
    ),
    Setting(
        "profile",
        "dev: one replica, smaller requests, IfNotPresent, ENVIRONMENT=development, for a local "
        "kind/minikube cluster; prod: the production defaults (default: prod)",
        "prod",
    ),
)

# What a profile changes: the defaults of some settings (a flag, the environment or the env file
# still win) and the backend's resource requests. prod is the plain defaults.
PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "dev": {
        "replicas": "1",  # one pod: no PodDisruptionBudget either
        "image-pull-policy": "IfNotPresent",  # an image built and loaded locally
        "environment": "development",
    },
    "prod": {},
}
# Requests of a dev pod: a laptop cluster schedules it next to everything else. The limits stay
# those of prod, so the app runs as it will in production (one worker per core of the limit).
DEV_REQUESTS = {"cpu_request_millicores": 50, "memory_request_mib": 128}


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
    secrets: dict[str, str] | None = field(repr=False)  # a repr ends up in logs and tracebacks
    existing_secret: str | None
    # Why SECRET_KEY was generated for this synth only (warned), or None.
    one_off_secret_key: str | None
    migrations: bool = True
    profile: str = "prod"
    ingress_host: str | None = None
    tls_secret: str | None = None
    # Where the generated SECRET_KEY is to be kept once the constructs accept every setting.
    new_secret_key_file: str | None = None


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line like every other error (argparse prints the usage first).
        self.exit(2, f"main.py: error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    # allow_abbrev=False: argparse echoes an ambiguous abbreviation with its value (`--e=VALUE`).
    parser = _ArgumentParser(
        allow_abbrev=False,
        description="Synthesize the backend tier into dist/ (or $CDK8S_OUTDIR). Each flag can "
        "also be set by the environment variable named in capitals (--max-replicas: "
        "MAX_REPLICAS). Secret values come from the environment or --env-file only: "
        f"{', '.join(SECRET_KEYS)}. Without --env-file, .env is read if present; without "
        "SECRET_KEY, the first synth generates one and keeps it in .env for the next ones.",
    )
    for setting in SETTINGS:
        parser.add_argument(f"--{setting.flag}", metavar=setting.env, help=setting.help)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse would echo the unknown arguments, and a mistyped one may well be a secret
        # (`--secret-key VALUE`): name the options only, never a value.
        options = [word.partition("=")[0] for word in unknown if word.startswith("-")]
        secret_flags = [
            o for o in options if o.lstrip("-").upper().replace("-", "_") in SECRET_KEYS
        ]
        if secret_flags:
            parser.exit(
                2,
                f"main.py: error: {secret_flags[0]} is not a flag: secret values come from the "
                "environment or --env-file only (the value given is not shown)\n",
            )
        what = f"unrecognized option {options[0]}" if options else "unexpected argument"
        parser.error(f"{what} (values are not shown)")
    return args


ENV_FILE_LIMIT = 1024 * 1024  # a ConfigMap or Secret holds 1 MiB at most: more is a mistake


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines, taken literally: `${VAR}` is not expanded (it would pull the synth
    machine's environment into a Secret)."""
    from dotenv.parser import parse_stream

    try:
        with open(path, "rb") as stream:
            data = stream.read(ENV_FILE_LIMIT + 1)  # bounded: /dev/zero or a log file by mistake
    except OSError as error:
        raise SettingError(f"env-file {path!r} cannot be read: {error.strerror}") from None
    if len(data) > ENV_FILE_LIMIT:
        raise SettingError(f"env-file {path!r} is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingError(f"env-file {path!r} cannot be read: it is not UTF-8 text") from None
    values = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:  # the line itself may hold a secret: give its number only
            raise SettingError(f"env-file {path!r} line {binding.original.line} is not KEY=VALUE")
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


DEFAULT_ENV_FILE = ".env"  # read when present, as docker compose does; the home of SECRET_KEY


def env_file_read(
    args: argparse.Namespace, environ: Mapping[str, str], default_env_file: str | None
) -> str | None:
    """The env file to read: the one named (--env-file, ENV_FILE), else the default if present."""
    named = args.env_file or environ.get("ENV_FILE")
    if named or default_env_file is None:
        return named or None
    return default_env_file if os.path.lexists(default_env_file) else None


def check_default_env_file(path: str) -> None:
    """Refuse to read .env unasked when someone else could have planted it: in a shared
    directory, their SECRET_KEY would sign your sessions. --env-file reads any file you name."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise SettingError(f"env-file {path!r} cannot be read: {error.strerror}") from None
    owner_ok = status.st_uid in (os.geteuid(), 0)
    if not stat.S_ISREG(status.st_mode) or not owner_ok or status.st_mode & stat.S_IWOTH:
        why = (
            "it is not a regular file"
            if not stat.S_ISREG(status.st_mode)
            else f"it belongs to another user (uid {status.st_uid})"
            if not owner_ok
            else f"anyone may write to it (mode {stat.S_IMODE(status.st_mode):04o})"
        )
        raise SettingError(
            f"refusing to read {path!r}: {why}; name it with --env-file {path} if you trust it"
        )


def keep_secret_key(path: str, new_key: str) -> tuple[str, str | None]:
    """The SECRET_KEY kept in path (.env): new_key, added there by the first synth, so that
    later synths give the same Secret and the pods do not roll. Returns (key, None), or
    (new_key, why) when path cannot be written (a read-only directory: warned).

    First synths running at once agree on one key: they take turns (a lock on the directory)
    and each reads path again first. path is created 0600 whole or not at all (written aside,
    then hard-linked into place), and a path with other lines keeps them: it is replaced by a
    copy with the key added, never through a symlink, never if others may read it.
    """
    from flask_backend.output import flocked

    folder = os.path.dirname(os.path.abspath(path))
    key = new_key
    try:
        with flocked(folder, fcntl.LOCK_EX):
            if os.path.lexists(path):
                kept = read_env_file(path).get("SECRET_KEY")
                if kept:
                    return kept, None
                _add_line(path, f"SECRET_KEY={key}\n")
                what = f"added a new SECRET_KEY to {path}"
            else:
                _create_whole(path, f"SECRET_KEY={key}\n".encode())
                what = f"created {path} with a new SECRET_KEY (mode 0600)"
    except OSError as error:
        return key, f"SECRET_KEY is not set and cannot be kept in {path} ({error.strerror})"
    print(
        f"main.py: {what}; later synths reuse it (rotate it: README, Secrets). Keep {path} "
        "out of version control.",
        file=sys.stderr,
    )
    return key, None


def _create_whole(path: str, data: bytes) -> None:
    """path with data, mode 0600, appearing whole (never half-written) or not at all."""
    _write_aside(path, data, 0o600, os.link)  # link fails if path appeared: never clobbered


def _write_aside(
    path: str, data: bytes, mode: int, put_in_place: Callable[[str, str], None]
) -> None:
    """Write data beside path (fsynced, with mode), then put_in_place(aside, path): os.link
    (never over an existing path) or os.replace (atomic: readers see old or new)."""
    aside = f"{path}.{secrets.token_hex(8)}.tmp"  # .env.* is git-ignored
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(descriptor, mode)
        os.write(descriptor, data)
        os.fsync(descriptor)
        put_in_place(aside, path)
    finally:
        os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):  # os.replace moved it
            os.unlink(aside)


def _add_line(path: str, line: str) -> None:
    """path with line added, its other lines untouched; refused (SettingError) through a
    symlink, on a file of someone else, and on one others may read."""
    status = os.lstat(path)
    mode = stat.S_IMODE(status.st_mode)
    if stat.S_ISLNK(status.st_mode) or not stat.S_ISREG(status.st_mode):
        problem = "it is a symlink" if stat.S_ISLNK(status.st_mode) else "not a regular file"
    elif status.st_uid != os.geteuid():
        problem = f"it belongs to another user (uid {status.st_uid})"
    elif mode & 0o077:
        problem = f"others may read it (mode {mode:04o}; chmod 600 {path} to let main.py add it)"
    else:
        problem = None
    if problem:
        raise SettingError(
            f"SECRET_KEY is not set and main.py does not add it to {path}: {problem}. Add "
            "SECRET_KEY=<48+ random characters> yourself, or use --existing-secret NAME"
        )
    with open(path, "rb") as stream:
        data = stream.read()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    _write_aside(path, data + line.encode(), mode, os.replace)


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str], *, default_env_file: str | None = None
) -> Tier:
    """Flags, then the environment, then the env file, then defaults. No cdk8s here.

    default_env_file (main passes .env): the env file when none is named and it exists, and
    where a SECRET_KEY generated for lack of one is kept for the next synths (keep_secret_key).
    Without it, nothing is read or written but a named env file: a generated key is one-off.
    """
    env_file = env_file_read(args, environ, default_env_file)
    if env_file is not None and not (args.env_file or environ.get("ENV_FILE")):
        check_default_env_file(env_file)  # read unasked
    source = {**(read_env_file(env_file) if env_file else {}), **environ}
    profile = args.profile or source.get("PROFILE") or "prod"
    if profile not in PROFILE_DEFAULTS:
        raise SettingError(f"profile must be one of {', '.join(PROFILE_DEFAULTS)}, got {profile!r}")

    def get(flag: str) -> str | None:
        setting = next(s for s in SETTINGS if s.flag == flag)
        value = getattr(args, flag.replace("-", "_"))
        default = PROFILE_DEFAULTS[profile].get(flag, setting.default)
        value = value if value is not None else source.get(setting.env, default)
        if value is not None:
            refuse_control_characters(flag, value)  # before any check that would show it
        return value

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
    for key, value in secret_values.items():
        refuse_control_characters(key, value, secret=True)
    max_replicas = integer("max-replicas")
    if max_replicas < 0:
        raise SettingError(f"max-replicas must be >= 0 (0: no autoscaler), got {max_replicas}")
    log_level = str(get("log-level"))
    if log_level.lower() not in LOG_LEVELS:
        raise SettingError(
            f"log-level must be one of {', '.join(LOG_LEVELS)} (any case), got {log_level!r}"
        )
    if existing_secret is None and "DATABASE_URL" in secret_values:
        check_database_url(secret_values["DATABASE_URL"])
    from flask_backend.validation import dns_label, dns_subdomain, host_name, one_of

    ingress_host = get("ingress-host") or None
    tls_secret = get("tls-secret") or None
    if tls_secret is not None and ingress_host is None:
        raise SettingError("tls-secret needs ingress-host: it is the certificate of that host")

    migrations = one_of("migrations", get("migrations"), ("on", "off")) == "on"
    namespace = tier_namespace(dns_label("namespace", get("namespace")))
    one_off = new_key_file = None
    if existing_secret is None and "SECRET_KEY" not in secret_values:
        secret_values["SECRET_KEY"] = secrets.token_urlsafe(48)
        if default_env_file and os.path.abspath(env_file or default_env_file) == os.path.abspath(
            default_env_file
        ):
            new_key_file = default_env_file  # kept by synthesize, once the constructs accept it
        else:  # a named env file is yours: main.py writes only to .env
            unset = "SECRET_KEY is not set"
            one_off = f"{unset} (nor in env-file {env_file!r})" if env_file else unset
    return Tier(
        image=image,
        image_pull_policy=pull_policy,
        name=str(get("name")),
        namespace=namespace,
        replicas=integer("replicas"),
        max_replicas=max_replicas,
        config={"LOG_LEVEL": log_level, "ENVIRONMENT": str(get("environment"))},
        secrets=None if existing_secret else secret_values,
        existing_secret=existing_secret,
        one_off_secret_key=one_off,
        new_secret_key_file=new_key_file,
        migrations=migrations,
        profile=profile,
        ingress_host=None if ingress_host is None else host_name("ingress-host", ingress_host),
        tls_secret=None if tls_secret is None else dns_subdomain("tls-secret", tls_secret),
    )


def tier_namespace(namespace: str) -> str:
    """The tier's own namespace: never one Kubernetes runs its components in."""
    from flask_backend.namespace import SYSTEM_NAMESPACES_TEXT, is_system_namespace

    if is_system_namespace(namespace):
        raise SettingError(
            "namespace must not be one Kubernetes runs its own pods in "
            f"({SYSTEM_NAMESPACES_TEXT}): its Namespace would enforce Pod Security on them, "
            f"got {namespace!r}"
        )
    return namespace


def check_database_url(url: str) -> None:
    """Refuse a DATABASE_URL the app would refuse at boot. Its value (a password) is never shown."""
    from urllib.parse import urlsplit

    allowed = ", ".join(f"{scheme}://" for scheme in DATABASE_URL_SCHEMES)
    parts = urlsplit(url)
    if parts.scheme.lower() not in DATABASE_URL_SCHEMES:
        raise SettingError(f"DATABASE_URL must start with {allowed} (its value is not shown)")
    if not parts.hostname:
        raise SettingError(
            "DATABASE_URL must name a host, like postgresql://user:password@db:5432/app "
            "(its value is not shown)"
        )
    try:
        port_ok = parts.port != 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if not port_ok:
        raise SettingError(
            "DATABASE_URL must have a port from 1 to 65535, or none (its value is not shown)"
        )


def build(tier: Tier, outdir: str) -> cdk8s.App:
    import cdk8s

    from flask_backend import (
        Autoscaling,
        FlaskBackend,
        Ingress,
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
        # The app image's migration command, once per release; pods wait until it is done.
        migrations=Migrations() if tier.migrations else None,
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


def check_printable(tier: Tier) -> None:
    """Refuse control characters (tab, newline, DEL, C1, U+2028/9) in every setting: no name
    or value needs them, and YAML readers choke on some of them after the synth."""
    for item in fields(tier):
        value = getattr(tier, item.name)
        entries = value.items() if isinstance(value, dict) else [(item.name, value)]
        for key, text in entries:
            if isinstance(text, str):
                label = key.lower().replace("_", "-") if item.name != "secrets" else key
                refuse_control_characters(label, f"{key}{text}", secret=item.name == "secrets")


def refuse_control_characters(label: str, text: str, *, secret: bool = False) -> None:
    if not _PRINTABLE.fullmatch(text):
        shown = "(the value is not shown)" if secret else f"got {text!r}"
        raise SettingError(f"{label} must not contain control characters, {shown}")


_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")


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


def shadowed(env_file: str | None, environ: Mapping[str, str]) -> list[str]:
    """A warning when the environment overrides what the env file says: the environment wins
    (as with docker compose and python-dotenv), but a stale `export SECRET_KEY=...` in the shell
    must not silently beat the file given on the command line. Names only, never values."""
    if not env_file:
        return []
    names = {setting.env for setting in SETTINGS} | set(SECRET_KEYS)
    file_values = read_env_file(env_file)
    overridden = sorted(
        name
        for name, value in file_values.items()
        if name in names and environ.get(name, value) != value
    )
    if not overridden:
        return []
    return [
        f"warning: the environment overrides {', '.join(overridden)} from env-file "
        f"{env_file!r} (the environment wins over --env-file; a flag wins over both)."
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
