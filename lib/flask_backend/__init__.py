"""flask-backend: a cdk8s construct for a Flask API on Kubernetes, production-safe by default.

Import it before cdk8s: it points jsii at the supported Node.js from PyPI (flask_backend.node).
"""

from flask_backend.node import JsiiNodeWarning, use_bundled_node

use_bundled_node()  # before flask_backend.backend imports cdk8s, which starts jsii's Node

from flask_backend.backend import FlaskBackend  # noqa: E402
from flask_backend.config import EnvFrom  # noqa: E402
from flask_backend.contract import (  # noqa: E402
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    METRICS_DIR,
    METRICS_PATH,
    RUN_AS_GROUP,
    RUN_AS_USER,
    SECRETS_DIR,
    TMP_DIR,
)
from flask_backend.migrations import Migrations  # noqa: E402
from flask_backend.monitoring import Metrics  # noqa: E402
from flask_backend.namespace import RestrictedNamespace  # noqa: E402
from flask_backend.network_policy import EgressRule, NetworkPolicyOptions  # noqa: E402
from flask_backend.output import OutputError, write_app  # noqa: E402
from flask_backend.pod import (  # noqa: E402
    ExtraContainer,
    Probes,
    Resources,
    Scheduling,
    Shutdown,
)
from flask_backend.routing import GatewayRef, HttpRoute, Ingress  # noqa: E402
from flask_backend.workload import Autoscaling  # noqa: E402

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
    "JsiiNodeWarning",
    "Metrics",
    "Migrations",
    "NetworkPolicyOptions",
    "OutputError",
    "Probes",
    "Resources",
    "RestrictedNamespace",
    "Scheduling",
    "Shutdown",
    "write_app",
]
