"""flask-backend: a cdk8s construct for a Flask API on Kubernetes, production-safe by default."""

from flask_backend.backend import (
    DEFAULT_PORT,
    RUN_AS_GROUP,
    RUN_AS_USER,
    SECRETS_DIR,
    TMP_DIR,
    Autoscaling,
    EgressRule,
    FlaskBackend,
    Migrations,
    NetworkPolicyOptions,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)

__all__ = [
    "DEFAULT_PORT",
    "RUN_AS_GROUP",
    "RUN_AS_USER",
    "SECRETS_DIR",
    "TMP_DIR",
    "Autoscaling",
    "EgressRule",
    "FlaskBackend",
    "Migrations",
    "NetworkPolicyOptions",
    "Probes",
    "Resources",
    "Scheduling",
    "Shutdown",
]
