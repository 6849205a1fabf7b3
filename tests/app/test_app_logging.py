"""Logs are JSON lines: the app's own, with the request id, and gunicorn's access records as
structured fields."""

import json
import logging
import os
import re
import select

import pytest

from backend_api import create_app
from backend_api.logs import JsonFormatter, access_line
from backend_api.request_id import ENVIRON_KEY


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


def test_access_line_has_every_documented_field() -> None:
    # Given a request as gunicorn hands it to the access log: WSGI environ, status, bytes sent
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/info?verbose=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/api/v1/info",
        "QUERY_STRING": "verbose=1",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_USER_AGENT": 'curl "quoted"',
        ENVIRON_KEY: "abc-123",
    }
    # When its line is written
    line = access_line("200 OK", 70, environ, 1500)
    # Then it is one JSON line with each value as a typed field
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    entry = json.loads(line)
    assert line == (json.dumps(entry) + "\n").encode()  # as json.dumps writes it, byte for byte
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry.pop("time"))
    assert entry.pop("pid") == os.getpid()
    assert entry == {
        "level": "info",
        "logger": "gunicorn.access",
        "message": "GET /api/v1/info?verbose=1 HTTP/1.1 200",
        "method": "GET",
        "path": "/api/v1/info",
        "query": "verbose=1",
        "status": 200,
        "duration_ms": 1.5,
        "response_bytes": 70,
        "remote_addr": "10.1.2.3",
        "user_agent": 'curl "quoted"',
        "request_id": "abc-123",
    }


def test_access_line_leaves_out_what_is_unknown() -> None:
    # Given an error gunicorn answered itself: no query, no user agent, no request id
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1"}
    environ |= {"PATH_INFO": "/", "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
    entry = json.loads(access_line("400 Bad Request", None, environ, 20))
    assert not {"query", "user_agent", "request_id", "response_bytes"} & set(entry)
    assert (entry["status"], entry["duration_ms"]) == (400, 0.02)


def test_access_line_stays_within_one_atomic_pipe_write() -> None:
    # Given a request whose URL and user agent are as long as gunicorn accepts, all escapes
    huge = "\x01" * 8000
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/" + huge, "SERVER_PROTOCOL": "HTTP/1.1"}
    environ |= {"PATH_INFO": "/" + huge, "QUERY_STRING": huge, "HTTP_USER_AGENT": huge}
    # When its line is written, then it fits in PIPE_BUF, says it was cut, and keeps the rest
    line = access_line("200 OK", 2, environ, 1000)
    entry = json.loads(line)
    assert len(line) <= select.PIPE_BUF
    assert entry["truncated"] is True
    assert entry["path"].startswith("/\x01")
    assert entry["status"] == 200


def test_extra_values_become_fields_even_when_not_json() -> None:
    # Given a record logged with extra context, one value of which JSON cannot encode
    record = logging.makeLogRecord({"name": "backend_api", "msg": "paid", "order": 7, "at": {1}})
    # When it is formatted, then the extras are fields, the odd one as text
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["message"], entry["order"], entry["at"]) == ("paid", 7, "{1}")
