"""The contract between the construct and the app image: what the image serves, which variables
and files it gets. One definition, read by every module and by the tests that hold the app
(app/Dockerfile, app/gunicorn.conf.py) equal to it. README: "Bring your own image".
"""

from __future__ import annotations

DEFAULT_PORT = 8000  # the http port, passed to the app as PORT
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001
# One read-only file per secret key, where Docker and Compose mount secrets too. No variable
# says where (the image reads this folder): scanners flag any variable named like a secret
# (kube-linter env-var-secret, Polaris sensitiveContainerEnvVar), whatever its value.
SECRETS_DIR = "/run/secrets"
TMP_DIR = "/tmp"  # noqa: S108 - the only writable path: a memory-backed emptyDir (gunicorn heartbeat)
PORT_NAME = "http"
# Prometheus metrics (app/backend_api/metrics.py): served by gunicorn's master on a port of their
# own, from files the workers write to a memory-backed emptyDir.
METRICS_PORT_NAME, METRICS_PATH, METRICS_DIR = "metrics", "/metrics", "/run/metrics"
DEFAULT_METRICS_PORT = 9102
# Environment variables and volumes the backend itself sets, or that would move what it mounts
# (the app reads its secrets from SECRETS_DIR when that is set); user input must not shadow them.
RESERVED_ENV = (
    "PORT",
    "GRACEFUL_TIMEOUT",
    "SECRETS_DIR",
    "CPU_LIMIT_MILLICORES",
    "METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "CPU_REQUEST_MILLICORES",
    "MAX_REQUEST_BYTES",
)
TMP_VOLUME, SECRETS_VOLUME, METRICS_VOLUME = "tmp", "secrets", "metrics"
RESERVED_VOLUMES = (TMP_VOLUME, SECRETS_VOLUME, METRICS_VOLUME)
# Requests larger than this are refused by the ingress controller, gunicorn and Flask alike: 1 MiB,
# ingress-nginx's own default, so the edge and the app agree out of the box.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
