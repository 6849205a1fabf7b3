"""JSON logs: one object per line on stdout.

- The app's logger (set up by ``create_app``) and gunicorn's error log (``gunicorn.conf.py``)
  go through Python's logging with ``JsonFormatter``; a line carries the request id when it
  is logged while a request is served.
- gunicorn's access log is written by ``GunicornLogger.access`` directly: one line a request
  is the hot path, and building gunicorn's log record (a dict of every header) and passing it
  through logging cost about 60 us a request, a fifth of the CPU (BENCHMARKS.md). The line is
  the same JSON object, fields as documented in the README ("Logs").

Every line is written with a single write(2) and kept under PIPE_BUF bytes, so lines from
several workers sharing the container's stdout pipe never interleave or tear.
"""

import json
import logging
import os
import select
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote  # json.dumps's own C escaper
from typing import Any, Final

from flask import has_request_context, request
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from backend_api.request_id import ENVIRON_KEY

ACCESS_LOGGER: Final = "gunicorn.access"
# Writes of at most this many bytes to a pipe are atomic (POSIX): no other writer's bytes can
# land inside them.
LINE_MAX_BYTES: Final = select.PIPE_BUF
# Free-text fields of an access line are cut to this many characters when the line would be
# longer than LINE_MAX_BYTES (a huge URL or user agent), so that even fully escaped (6 bytes a
# character) it fits; the line then says so.
TRUNCATED_FIELD_CHARS: Final = 128

# Attributes every LogRecord has. Any other attribute came from `extra=` and becomes a field.
_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, pid, message, then context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = request.environ.get(ENVIRON_KEY)
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a log line must never fail because an `extra` value is not JSON.
        return json.dumps(entry, default=str)


class GunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger (error log, reopening, ...) with the access log written directly.

    The access log goes to stdout when gunicorn's ``accesslog`` is "-" and nowhere otherwise:
    the image logs to stdout only.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.access_to_stdout = cfg.accesslog == "-"  # read once: cfg's attributes are slow

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.access_to_stdout:
            # From the request's arrival when our worker noted it (worker.py): the time it
            # waited for its body and an app slot counts. gunicorn's own request_time starts
            # when the app is called.
            arrived = getattr(req, "arrived", None)
            if arrived is not None:
                micros = int((time.monotonic() - arrived) * 1_000_000)
            else:
                micros = request_time.seconds * 1_000_000 + request_time.microseconds
            os.write(1, access_line(resp.status, getattr(resp, "sent", None), environ, micros))


_clock: list[Any] = [None, ""]  # [whole second, its "YYYY-MM-DDTHH:MM:SS"]: one strftime a second


def _timestamp(now: float) -> str:
    """The JsonFormatter's time format (ISO 8601, milliseconds, UTC) without a datetime."""
    second = int(now)
    if _clock[0] != second:
        _clock[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_clock[1]}.{int(now * 1000) % 1000:03d}+00:00"


def access_line(
    status: str | int, sent: int | None, environ: dict[str, Any], duration_us: int
) -> bytes:
    """One access-log line: the fields gunicorn's access record gave JsonFormatter, with its
    message ("GET /path HTTP/1.1 200"); unknown values are left out rather than written "-".
    The same text json.dumps would write, built without a dict walk (a third of the cost)."""
    code = str(status).split(None, 1)[0]
    method = environ.get("REQUEST_METHOD")
    text = {
        "message": f"{method} {environ.get('RAW_URI')} {environ.get('SERVER_PROTOCOL')} {code}",
        "method": method,
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
    }
    peer = {
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "request_id": environ.get(ENVIRON_KEY),
    }
    numbers = (
        f', "status": {code if code.isdigit() else _quote(code)}'
        f', "duration_ms": {duration_us / 1000!r}'
        + (f', "response_bytes": {sent}' if sent is not None else "")
    )
    head = (
        f'{{"time": "{_timestamp(time.time())}", "level": "info", '
        f'"logger": "{ACCESS_LOGGER}", "pid": {os.getpid()}'
    )
    line = head + _strings(text) + numbers + _strings(peer) + "}\n"
    if len(line) > LINE_MAX_BYTES:  # characters: all ASCII, as _quote escapes the rest
        cut = {k: v[:TRUNCATED_FIELD_CHARS] if isinstance(v, str) else v for k, v in text.items()}
        peer["user_agent"] = (peer["user_agent"] or "")[:TRUNCATED_FIELD_CHARS]
        line = head + _strings(cut) + numbers + _strings(peer) + ', "truncated": true}\n'
    return line.encode()


def _strings(fields: dict[str, Any]) -> str:
    return "".join(f', "{key}": {_quote(value)}' for key, value in fields.items() if value)


def configure_logger(logger: logging.Logger) -> None:
    """Send ``logger``'s records to stdout as JSON lines.

    Safe to call again (tests build many apps in one process): it replaces the logger's
    handlers rather than adding to them, which also removes Flask's default stderr handler.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    # Under gunicorn the root logger prints JSON to stdout too: propagating would print
    # every line twice.
    logger.propagate = False
