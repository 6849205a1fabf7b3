"""The app's configuration, from lowest to highest precedence:

1. ``DEFAULTS`` below;
2. ``FLASK_*`` environment variables (``FLASK_LOG_LEVEL`` sets ``LOG_LEVEL``): how a
   ConfigMap arrives;
3. files in the directory ``SECRETS_DIR`` names, else in ``/run/secrets`` when it exists (file
   name = key, content = value): how a Secret volume arrives (FlaskBackend mounts it there, as
   Docker and Compose mount secrets);
4. the ``test_config`` given to ``create_app()``.
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from flask import Config

ENV_PREFIX: Final = "FLASK"

DEFAULTS: Final[Mapping[str, str | None]] = {
    "APP_NAME": "flask-backend",
    "ENVIRONMENT": "production",
    "LOG_LEVEL": "info",
    # The PostgreSQL database (postgresql://user:password@host:5432/name). Optional: without
    # it the API has no items and /readyz checks nothing; with it /readyz runs SELECT 1.
    "DATABASE_URL": None,
    # Required in production. Prefer a file in SECRETS_DIR to FLASK_SECRET_KEY: files are
    # not inherited by child processes nor readable in /proc/<pid>/environ.
    "SECRET_KEY": None,
}

LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

# Where the pod mounts its Secret (FlaskBackend's SECRETS_DIR; a test holds the two equal).
DEFAULT_SECRETS_DIR: Final = Path("/run/secrets")

# The schemes DATABASE_URL may use; the app hands all of them to SQLAlchemy as psycopg 3.
DATABASE_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg")

# PostgreSQL's port, assumed when DATABASE_URL names none.
DEFAULT_PORT: Final = 5432

# What Flask accepts as a config key (it ignores the rest): upper case, like an env variable.
_CONFIG_KEY: Final = re.compile(r"[A-Z][A-Z0-9_]*")


class ConfigError(RuntimeError):
    """The configuration cannot work. Messages name the key and never show its value."""


# The largest request body when the pod sets no MAX_REQUEST_BYTES: the construct's default.
DEFAULT_MAX_REQUEST_BYTES: Final = 1024 * 1024


def load(config: Config, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``config`` from every source, each overriding the ones before it."""
    config.from_mapping(DEFAULTS)
    # FlaskBackend's max_request_bytes, which also sizes gunicorn's limits and the ingress's:
    # Flask answers 413 to a larger body.
    config["MAX_CONTENT_LENGTH"] = max_request_bytes(os.environ)
    config.from_prefixed_env(ENV_PREFIX)
    # from_prefixed_env() parses values as JSON: FLASK_APP_NAME=123 would become an int and
    # FLASK_SECRET_KEY=true a bool. Our keys are text, so they keep the environment's text.
    for key in DEFAULTS:
        text = os.environ.get(f"{ENV_PREFIX}_{key}")
        if text is not None:
            config[key] = text
    secrets_dir = os.environ.get("SECRETS_DIR")
    if secrets_dir:
        config.from_mapping(read_secrets_dir(Path(secrets_dir)))
    elif DEFAULT_SECRETS_DIR.is_dir():
        config.from_mapping(read_secrets_dir(DEFAULT_SECRETS_DIR))
    if test_config is not None:
        config.from_mapping(test_config)


def max_request_bytes(environ: Mapping[str, str]) -> int:
    """MAX_REQUEST_BYTES, a positive number of bytes (default: 1 MiB)."""
    text = environ.get("MAX_REQUEST_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_REQUEST_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"MAX_REQUEST_BYTES must be a positive integer, got {text!r}")
    return int(text)


def read_secrets_dir(directory: Path) -> dict[str, str]:
    """Read a mounted Secret: each file named like a config key holds that key's value.

    Kubernetes also puts hidden entries there (``..data``, ``..2024_01_31_...``) that the
    key files link into; those, and names Flask would ignore (``tls.crt``), are skipped.
    """
    if not directory.is_dir():
        # A missing mount must not silently mean "no secrets".
        raise ConfigError(f"SECRETS_DIR must be a directory, got {str(directory)!r}")
    return {
        # `echo value > file` and editors end files with a newline that is not the secret's.
        path.name: path.read_text(encoding="utf-8").removesuffix("\n")
        for path in sorted(directory.iterdir())
        if _CONFIG_KEY.fullmatch(path.name) and path.is_file()
    }


def check(config: Config, *, production: bool) -> None:
    """Raise ConfigError for settings the app cannot run with."""
    if production and not config["SECRET_KEY"]:
        raise ConfigError(
            "SECRET_KEY is not set: a production app needs it to sign sessions. "
            "Provide it as the file SECRET_KEY in SECRETS_DIR, or as FLASK_SECRET_KEY."
        )
    log_level(config["LOG_LEVEL"])
    if config["DATABASE_URL"]:
        database_address(config["DATABASE_URL"])


def log_level(name: str) -> str:
    """The ``logging`` level name for a LOG_LEVEL value such as "info" (any case)."""
    if str(name).lower() not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {name!r}")
    return str(name).upper()


def database_address(url: str) -> tuple[str, int]:
    """The (host, port) of DATABASE_URL, with PostgreSQL's port when it names none.

    The URL usually carries a password, so no error message includes it.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError("DATABASE_URL must name a host, like postgresql://user:pw@db:5432/app")
    if parts.scheme not in DATABASE_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in DATABASE_SCHEMES)
        raise ConfigError(f"DATABASE_URL must start with {allowed}, got {parts.scheme!r}://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:  # not a number, or out of range
        raise ConfigError("DATABASE_URL has an invalid port") from None
    return parts.hostname, port
