"""The settings of this repository's backend tier: flags, environment, env file, profiles.

Every setting is a flag and an environment variable of the same name (--replicas / REPLICAS);
a flag wins over the environment, which wins over the env file (--env-file, else .env if there
is one). Secret values (SECRET_KEY, DATABASE_URL) come only from the environment or the env
file. main.py turns the resolved Tier into the chart. No cdk8s here: `--help` and a bad setting
never start Node.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import NoReturn

from flask_backend.envfile import SettingError, check_default_env_file, read_env_file

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
    # Not NAME: shells and WSL set NAME (the host's name), which would rename every object.
    Setting("backend-name", "name of the backend's objects (default: flask-api)", "flask-api"),
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


def env_file_read(
    args: argparse.Namespace, environ: Mapping[str, str], default_env_file: str | None
) -> str | None:
    """The env file to read: the one named (--env-file, ENV_FILE), else the default if present."""
    named = args.env_file or environ.get("ENV_FILE")
    if named or default_env_file is None:
        return named or None
    return default_env_file if os.path.lexists(default_env_file) else None


DEFAULT_ENV_FILE = ".env"  # read when present, as docker compose does; the home of SECRET_KEY


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
        name=str(get("backend-name")),
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
