"""Probe endpoints for Kubernetes. 200 means ok, 503 means not ok; bodies are JSON.

- /startupz: the app has booted. gunicorn workers build the app before they accept a
  connection, so answering at all means create_app() finished. A separate endpoint lets the
  startup probe wait out a slow boot without making liveness lenient.
- /livez: the process can answer. It never checks dependencies: a database outage must not
  make Kubernetes restart every pod.
- /readyz: the pod can serve. When DATABASE_URL is set, the database must accept a TCP
  connection; otherwise the pod leaves the Service until it does.
"""

import logging
import socket
from typing import Any, Final

from flask import Blueprint, current_app

from backend_api.config import database_address

# Below the kubelet's default probe timeout (1 s), so a slow database gives a 503 and a log
# line rather than a probe timeout; a connection inside a cluster takes milliseconds.
DATABASE_CONNECT_TIMEOUT_SECONDS: Final = 0.5

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)

Body = dict[str, Any]


@bp.get("/startupz")
def startupz() -> Body:
    return {"status": "ok"}


@bp.get("/livez")
def livez() -> Body:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Body | tuple[Body, int]:
    url = current_app.config["DATABASE_URL"]
    if not url:
        return {"status": "ok", "checks": {}}
    host, port = database_address(url)
    try:
        with socket.create_connection((host, port), timeout=DATABASE_CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        # Host and port only: the URL carries credentials.
        log.warning("database %s:%d is unreachable: %s", host, port, error)
        return {"status": "fail", "checks": {"database": "fail"}}, 503
    return {"status": "ok", "checks": {"database": "ok"}}
