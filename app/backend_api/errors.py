"""Errors as JSON: {"error": {"status": 404, "message": "..."}}, never an HTML page.

One handler for every HTTPException covers 400, 404 and 405, and also 500: Flask wraps an
unhandled exception in InternalServerError after logging its traceback, so the response
shows only the generic description, never the exception.
"""

from flask import Flask, json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _json_error)


def _json_error(error: HTTPException) -> Response:
    # Start from werkzeug's response to keep its headers, such as Allow on a 405. flask.json
    # serialises like the app's other JSON responses.
    response = error.get_response()
    response.set_data(json.dumps({"error": {"status": error.code, "message": error.description}}))
    response.content_type = "application/json"
    return response
