"""Probe endpoints for Kubernetes. 200 means ok, 503 means not ok; bodies are JSON.

- /startupz: the app has booted. gunicorn workers build the app before they accept a
  connection, so answering at all means create_app() finished. A separate endpoint lets the
  startup probe wait out a slow boot without making liveness lenient.
- /livez: the process can answer. It never checks dependencies: a database outage must not
  make Kubernetes restart every pod.
- /readyz: the pod can serve. When DATABASE_URL is set, the database must answer SELECT 1
  within half a second (db.ReadinessCheck: its own connection, the answer kept for 2 s);
  otherwise the pod leaves the Service until it does, and comes back by itself.
"""

from typing import Any

from flask import Blueprint, current_app

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
    check = current_app.extensions.get("database_readiness")
    if check is None:
        return {"status": "ok", "checks": {}}
    if not check.ok():
        return {"status": "fail", "checks": {"database": "fail"}}, 503
    return {"status": "ok", "checks": {"database": "ok"}}
