"""The public API, versioned under /api/v1/."""

from typing import Any

from flask import Blueprint, current_app

# The package itself, not `from backend_api import __version__`: this module is imported
# while the package is still initialising, and the attribute is read only per request.
import backend_api

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/info")
def info() -> dict[str, Any]:
    """What is running: name, version and environment. Never a secret."""
    return {
        "name": current_app.config["APP_NAME"],
        "version": backend_api.__version__,
        "environment": current_app.config["ENVIRONMENT"],
    }
