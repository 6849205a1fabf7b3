"""JSON logs: one object per line on stdout.

The same ``JsonFormatter`` formats the app's logger (set up by ``create_app``) and
gunicorn's error and access logs (set up by ``gunicorn.conf.py``), so every line the
container prints parses as JSON and carries the request id where there is one.
"""

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from flask import g, has_request_context

ACCESS_LOGGER: Final = "gunicorn.access"

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
        if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        elif has_request_context():
            entry["request_id"] = g.get("request_id")
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a log line must never fail because an `extra` value is not JSON.
        return json.dumps(entry, default=str)


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """Fields from the atoms gunicorn passes to its access log (gunicorn.glogging.Logger.atoms)."""
    status = str(atoms.get("s", ""))
    micros = atoms.get("D")
    fields = {
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "query": atoms.get("q"),
        "status": int(status) if status.isdigit() else status,
        "duration_ms": micros / 1000 if isinstance(micros, int) else None,
        "response_bytes": atoms.get("B"),
        "remote_addr": atoms.get("h"),
        "user_agent": atoms.get("a"),
        # Response headers are atoms named {header}o; the app always sets this one.
        "request_id": atoms.get("{x-request-id}o"),
    }
    # gunicorn writes "-" for a missing value and escapes double quotes for its text format;
    # JSON needs neither.
    return {
        key: value.replace('\\"', '"') if isinstance(value, str) else value
        for key, value in fields.items()
        if value not in (None, "", "-")
    }


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
