"""Probe endpoints for Kubernetes. 200 means ok, 503 means not ok; bodies are JSON.

- /startupz: the app has booted. gunicorn workers build the app before they accept a
  connection, so answering at all means create_app() finished. A separate endpoint lets the
  startup probe wait out a slow boot without making liveness lenient.
- /livez: the process can answer. It never checks dependencies: a database outage must not
  make Kubernetes restart every pod.
- /readyz: the pod can serve. Its requests are not stuck: the worker reports when every app
  slot has been held for a long time with none freeing (worker.py, APP_SLOTS_STUCK). And when
  DATABASE_URL is set, the database answers SELECT 1 within db.READINESS_DEADLINE_SECONDS,
  half the probe's timeout (db.ReadinessCheck: its own connection, the answer kept for 2 s).
  Otherwise the pod leaves the Service until it can, and comes back by itself.
"""

from typing import Any

from flask import Blueprint, current_app, request

bp = Blueprint("health", __name__)

Body = dict[str, Any]

# Set in the WSGI environ by the gunicorn worker (worker.py): True while its app slots are stuck.
APP_SLOTS_STUCK = "backend_api.app_slots_stuck"


@bp.get("/startupz")
def startupz() -> Body:
    return {"status": "ok"}


@bp.get("/livez")
def livez() -> Body:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Body | tuple[Body, int]:
    if request.environ.get(APP_SLOTS_STUCK):
        return {"status": "fail", "checks": {"app_slots": "fail"}}, 503
    check = current_app.extensions.get("database_readiness")
    if check is None:
        return {"status": "ok", "checks": {}}
    if not check.ok():
        return {"status": "fail", "checks": {"database": "fail"}}, 503
    return {"status": "ok", "checks": {"database": "ok"}}
