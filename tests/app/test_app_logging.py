"""Logs are JSON lines: the app's own, with the request id, and gunicorn's access records as
structured fields."""

import json
import logging

import pytest
from gunicorn.glogging import SafeAtoms  # type: ignore[import-untyped]

from backend_api import create_app
from backend_api.logs import JsonFormatter


def test_app_log_line_is_json_with_the_request_id(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an app whose database is down
    url = f"postgresql://app:db-password@127.0.0.1:{closed_port}/app"
    client = create_app({"TESTING": True, "DATABASE_URL": url}).test_client()
    # When readiness is probed with a request id
    client.get("/readyz", headers={"X-Request-ID": "probe-1"})
    # Then the app logs one JSON warning line carrying that id, without the password
    (line,) = capsys.readouterr().out.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "backend_api.db"
    assert entry["request_id"] == "probe-1"
    assert entry["message"].startswith("database is not ready: ")
    assert f'"127.0.0.1", port {closed_port} failed' in entry["message"]
    assert "db-password" not in line


def test_gunicorn_access_record_becomes_structured_fields() -> None:
    # Given an access record as gunicorn emits it: its format string and escaped atoms
    atoms = SafeAtoms(
        {
            "r": "GET /api/v1/info HTTP/1.1",
            "m": "GET",
            "U": "/api/v1/info",
            "q": "",
            "s": "200",
            "B": 70,
            "D": 1500,
            "h": "10.1.2.3",
            "a": 'curl "quoted"',
            "f": "-",
            "{x-request-id}o": "abc-123",
        }
    )
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(s)s", (atoms,), None
    )
    # When it is formatted
    entry = json.loads(JsonFormatter().format(record))
    # Then each atom is a typed field; gunicorn's "-" and empty values are left out
    del entry["time"], entry["pid"]
    assert entry == {
        "level": "info",
        "logger": "gunicorn.access",
        "message": "GET /api/v1/info HTTP/1.1 200",
        "method": "GET",
        "path": "/api/v1/info",
        "status": 200,
        "duration_ms": 1.5,
        "response_bytes": 70,
        "remote_addr": "10.1.2.3",
        "user_agent": 'curl "quoted"',
        "request_id": "abc-123",
    }


def test_extra_values_become_fields_even_when_not_json() -> None:
    # Given a record logged with extra context, one value of which JSON cannot encode
    record = logging.makeLogRecord({"name": "backend_api", "msg": "paid", "order": 7, "at": {1}})
    # When it is formatted, then the extras are fields, the odd one as text
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["message"], entry["order"], entry["at"]) == ("paid", 7, "{1}")
