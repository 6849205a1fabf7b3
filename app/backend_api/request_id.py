"""Request ids: every response carries one in X-Request-ID, and so do the logs of its request.

A caller's id (from a proxy or an upstream service) is kept so one id follows a request
across services; anything that is not a short, plain token is replaced rather than echoed
into logs and headers.
"""

import re
import uuid
from typing import Final

from flask import Flask, Response, g, request

HEADER: Final = "X-Request-ID"

# Long enough for a UUID or a W3C trace id; only characters that are safe in any log format.
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")


def init_app(app: Flask) -> None:
    app.before_request(_take_request_id)
    app.after_request(_return_request_id)


def _take_request_id() -> None:
    incoming = request.headers.get(HEADER, "")
    g.request_id = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


def _return_request_id(response: Response) -> Response:
    response.headers[HEADER] = g.request_id
    return response
