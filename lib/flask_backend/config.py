"""Config and secrets: the ConfigMap and the Secret the app reads, the environment the container
gets (``env``, ``env_from``), and the ``checksum/config`` that rolls the pods when any of it
changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_backend import shared
from flask_backend import validation as v
from flask_backend.contract import RESERVED_ENV
from flask_backend.monitoring import Metrics, metrics_env

if TYPE_CHECKING:
    from flask_backend.backend import FlaskBackend

CHECKSUM_ANNOTATION = "checksum/config"  # on the pod template: config changes roll the pods
# The secret that keys checksum/config (see config_checksum): Flask's session-signing key, which
# must be long and random anyway. 32 characters: 128 bits as hex, more in any richer alphabet.
CHECKSUM_KEY_SECRET = "SECRET_KEY"  # noqa: S105 - the name of a key, not a value
MIN_CHECKSUM_KEY_LENGTH = 32


@dataclass(frozen=True)
class EnvFrom:
    """Every key of a ConfigMap or Secret managed elsewhere, as environment variables."""

    config_map: str | None = None
    """Name of the ConfigMap (give this or ``secret``). Default: - none."""
    secret: str | None = None
    """Name of the Secret (give this or ``config_map``). Default: - none."""
    prefix: str = ""
    """Prefix of each variable's name. Default: "" (the keys as they are)."""
    optional: bool = False
    """Start the pods even when the object does not exist. Default: False (pods wait for it)."""

    def _to_json(self, argument: str) -> dict[str, Any]:
        if (self.config_map is None) == (self.secret is None):
            raise ValueError(
                f"{argument} must name a config_map or a secret, got "
                f"config_map={self.config_map!r}, secret={self.secret!r}"
            )
        kind, name = (
            ("configMapRef", self.config_map)
            if self.secret is None
            else (
                "secretRef",
                self.secret,
            )
        )
        field_name = "config_map" if kind == "configMapRef" else "secret"
        v.dns_subdomain(f"{argument}.{field_name}", name)
        v.require_type(f"{argument}.prefix", self.prefix, str)
        if self.prefix and not v.C_IDENTIFIER.fullmatch(self.prefix):
            raise ValueError(
                f"{argument}.prefix must be empty or a C identifier, got {self.prefix!r}"
            )
        v.require_type(f"{argument}.optional", self.optional, bool)
        source: dict[str, Any] = {kind: {"name": name, "optional": self.optional}}
        if self.prefix:
            source["prefix"] = self.prefix
        return source


# -- validation ---------------------------------------------------------------------------------


def env_prefix(prefix: str) -> str:
    v.require_type("env_prefix", prefix, str)
    if prefix and not v.C_IDENTIFIER.fullmatch(prefix):
        raise ValueError(f"env_prefix must be empty or a C identifier, got {prefix!r}")
    return prefix


def config_data(config: Mapping[str, str] | None, prefix: str) -> dict[str, str]:
    data = v.string_map("config", config or {})
    v.yaml_text("config", data)
    v.data_keys("config", data, env_prefix=prefix)
    return data


def secret_data(
    secrets: Mapping[str, str] | None,
    existing_secret: str | None,
    *,
    prefix: str,
    secrets_as_env: bool,
) -> dict[str, str]:
    if secrets is not None and existing_secret is not None:
        raise ValueError(
            "secrets and existing_secret are exclusive: pass the values or the name of a "
            f"Secret managed elsewhere, got both (existing_secret={existing_secret!r})"
        )
    data = v.string_map("secrets", secrets or {}, secret=True)
    v.yaml_text("secrets", data, secret=True)
    v.data_keys("secrets", data, env_prefix=prefix if secrets_as_env else None)
    if data and len(data.get(CHECKSUM_KEY_SECRET, "")) < MIN_CHECKSUM_KEY_LENGTH:
        # It keys the rollout checksum (see config_checksum): a short or missing one would
        # let anyone who can read Deployments test guesses of every secret value.
        got = (
            f"{len(data[CHECKSUM_KEY_SECRET])} characters"
            if CHECKSUM_KEY_SECRET in data
            else f"keys {sorted(data)}"
        )
        raise ValueError(
            f"secrets[{CHECKSUM_KEY_SECRET!r}] must be at least {MIN_CHECKSUM_KEY_LENGTH} "
            "random characters (it signs sessions and keys the checksum/config annotation, "
            f"which Deployment readers see), got {got}"
        )
    return data


def extra_env(env: Mapping[str, str] | None) -> dict[str, str]:
    result = v.string_map("env", env or {})
    v.yaml_text("env", result)
    for key in result:
        if not v.C_IDENTIFIER.fullmatch(key):
            raise ValueError(f"env key must be a C identifier, got {key!r}")
        if key in RESERVED_ENV:
            # These carry the contract with the app (port, grace period, CPU, secrets dir).
            raise ValueError(
                f"env key must not be one the backend reserves ({', '.join(RESERVED_ENV)}), "
                f"got {key!r}"
            )
    return result


def env_from_sources(sources: Sequence[EnvFrom]) -> list[dict[str, Any]]:
    v.require_type("env_from", sources, (tuple, list))
    result = []
    for i, source in enumerate(sources):
        v.require_type(f"env_from[{i}]", source, EnvFrom)
        result.append(source._to_json(f"env_from[{i}]"))
    return result


def check_environment(
    *,
    port: int,
    graceful_timeout_seconds: int,
    metrics: Metrics | None,
    max_request_bytes: int,
    extra: Mapping[str, str],
    config: Mapping[str, str],
    secrets: Mapping[str, str] | None,
    prefix: str,
) -> None:
    """What the container's environment will hold, within what execve accepts. The backend's
    own variables count too (CPU_LIMIT_MILLICORES at its longest). `secrets`: when they are
    passed as variables."""
    own_env = {
        "PORT": str(port),
        "GRACEFUL_TIMEOUT": str(graceful_timeout_seconds),
        "CPU_LIMIT_MILLICORES": str(v.INT32_MAX),
        **metrics_env(metrics),
        "MAX_REQUEST_BYTES": str(max_request_bytes),
    }
    env_sources = {
        "the backend": own_env,
        "env": extra,
        "config": {prefix + k: value for k, value in config.items()},
    }
    if secrets is not None:
        env_sources["secrets"] = {prefix + k: value for k, value in secrets.items()}
    v.environment(env_sources)
    for argument in ("config", "secrets"):
        for name in env_sources.get(argument, {}):
            # SECRETS_DIR, which the backend does not set, would move where the app reads its
            # secrets from, away from the mounted Secret.
            if name in RESERVED_ENV:
                raise ValueError(
                    f"{argument} must not make the environment variable {name!r}, which the "
                    f"backend reserves ({', '.join(RESERVED_ENV)})"
                )


def config_checksum(
    config: Mapping[str, str], secrets: Mapping[str, str], existing_secret: str | None
) -> str:
    """checksum/config: changes with every config or secret value, and gives none of them away.

    The pod template carries it, so any change rolls the pods. Whoever may read Deployments
    (Kubernetes' `view` role) sees it, and sees the ConfigMap, but not the Secret: a plain hash
    over the values would let them test guesses of a secret offline (a 4-digit password falls
    in milliseconds). So it is an HMAC-SHA256 keyed by a key derived from SECRET_KEY, a value of
    at least 32 random characters (checked) that only the Secret holds: without it, no guess of
    any value can be checked. The same input gives the same checksum on every synth. Without
    secret values (none, or a Secret managed elsewhere), the data is public and the key empty.
    """
    key = (
        hmac.new(
            secrets[CHECKSUM_KEY_SECRET].encode(), b"flask-backend checksum/config", hashlib.sha256
        ).digest()
        if secrets
        else b""
    )
    data = json.dumps([config, secrets, existing_secret], sort_keys=True).encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


# -- the objects --------------------------------------------------------------------------------


def _data_object(
    backend: FlaskBackend, kind: str, name: str, data: Mapping[str, str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"immutable": False}
    if data:  # even all-empty values: "" is still a setting the app must see
        body["data"] = dict(sorted(data.items()))
    return shared.document(backend.identity, "v1", kind, name, **body)


def config_map(backend: FlaskBackend) -> dict[str, Any]:
    # Data in one field, keys sorted: the same data in another order gives the same file.
    return _data_object(backend, "ConfigMap", f"{backend.name}-config", backend.config)


def secret(backend: FlaskBackend, data: Mapping[str, str]) -> dict[str, Any]:
    # `data`, base64, as the API server stores it: `stringData` is write-only, so every
    # `kubectl apply` would send it again ("configured" with nothing changed).
    encoded = {k: base64.b64encode(s.encode()).decode() for k, s in data.items()}
    return _data_object(backend, "Secret", f"{backend.name}-secrets", encoded)
