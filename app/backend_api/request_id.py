"""Request ids: every response carries one in X-Request-ID, and so do the logs of its request.

A caller's id (from a proxy or an upstream service) is kept so one id follows a request
across services; anything that is not a short, plain token is replaced rather than echoed
into logs and headers.

A WSGI middleware rather than Flask hooks: it runs once per request without Flask's hook
machinery or a header object, and it also covers responses Flask's hooks never see. The id
lives in the WSGI environ under ENVIRON_KEY, where the app's logs and gunicorn's access log
(logs.py) read it.
"""

import itertools
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from flask import Flask

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER: Final = "X-Request-ID"
ENVIRON_KEY: Final = "backend_api.request_id"

# Long enough for a UUID or a W3C trace id; only characters that are safe in any log format.
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")


class _Ids:
    """32 hex digits, like uuid4().hex, unique without a system call per request: a random
    prefix drawn once per process (and again after a fork) and a counter. Request ids are
    labels for correlating logs, not secrets, so they need not be unpredictable."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_id = _Ids().next


def init_app(app: Flask) -> None:
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app)  # type: ignore[method-assign]


class RequestIdMiddleware:
    def __init__(self, app: "WSGIApplication") -> None:
        self.app = app

    def __call__(
        self, environ: "WSGIEnvironment", start_response: "StartResponse"
    ) -> Iterable[bytes]:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_ID.fullmatch(incoming) else new_id()
        environ[ENVIRON_KEY] = request_id

        def start_with_id(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_id)
