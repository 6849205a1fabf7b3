"""Errors as JSON: {"error": {"status": 404, "message": "..."}}, never an HTML page.

One handler for every HTTPException covers 400, 404 and 405, and also 500: Flask wraps an
unhandled exception in InternalServerError after logging its traceback, so the response
shows only the generic description, never the exception.

A client's mistake is never a server error: JSON too deeply nested for the parser is a 400
like any other malformed JSON (it raised RecursionError, a 500).
"""

from typing import Any

from flask import Flask, json
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response


def init_app(app: Flask) -> None:
    app.json = JsonProvider(app)
    app.register_error_handler(HTTPException, _json_error)


class JsonProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # A ValueError is what request.get_json() answers 400 to.
            raise ValueError("JSON nested too deeply") from None


def _json_error(error: HTTPException) -> Response:
    # Start from werkzeug's response to keep its headers, such as Allow on a 405. flask.json
    # serialises like the app's other JSON responses.
    response = error.get_response()
    response.set_data(json.dumps({"error": {"status": error.code, "message": error.description}}))
    response.content_type = "application/json"
    return response
