"""gunicorn's access log and the app's logs under concurrency: real gunicorn with the shipped
config, two workers writing to one stdout pipe (as in a container), many requests at once.
Every line must be whole JSON, one access line per request, none torn or interleaved."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from served import get, gunicorn

REQUESTS = 600
# Long enough that an access line is near PIPE_BUF (4096 bytes): a line written in more than
# one piece, or two lines mixed, would show as broken JSON.
USER_AGENT = "load-test/" + "x" * 3500


def test_concurrent_lines_from_two_workers_are_whole_and_one_per_request(
    tmp_path: Path, closed_port: int
) -> None:
    # Given two workers whose app also logs (a database that is down makes /readyz warn)
    database = f"postgresql://app:pw@127.0.0.1:{closed_port}/app"
    env = {"WEB_CONCURRENCY": "2", "FLASK_DATABASE_URL": database}
    with gunicorn("backend_api:create_app()", tmp_path, **env) as server:
        # When many clients call the API and readiness at once, each with its own request id
        def call(i: int) -> int:
            path = "/readyz" if i % 3 == 0 else "/api/v1/info"
            headers = {"X-Request-ID": f"req-{i}", "User-Agent": USER_AGENT}
            return get(server.port, path, headers, timeout=20)[0]

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(call, range(REQUESTS)))
        server.process.terminate()
        server.process.wait(timeout=30)
        lines = server.log_lines()
    assert set(statuses) <= {200, 503}
    # Then every line is a JSON object
    entries = [json.loads(line) for line in lines]
    # And each request has exactly one access line, whole, with its id and user agent
    access = [e for e in entries if e["logger"] == "gunicorn.access" and "req-" in str(e)]
    assert sorted(e["request_id"] for e in access) == sorted(f"req-{i}" for i in range(REQUESTS))
    assert all(e["user_agent"] == USER_AGENT for e in access)
    assert len({e["pid"] for e in access}) == 2
    # And the app's warnings carry the id of the request that logged them
    # (readiness checks the database at most every few seconds per worker, so not every
    # /readyz logs: those that did carry their own request's id)
    warnings = [e for e in entries if e["logger"] == "backend_api.db"]
    assert warnings
    assert {e["request_id"] for e in warnings} <= {f"req-{i}" for i in range(0, REQUESTS, 3)}
