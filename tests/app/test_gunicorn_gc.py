"""The garbage collector of a real gunicorn worker (shipped config) serving the items API from
a real PostgreSQL: requests in flight do not set off collections that stop them all
(serving.tune_garbage_collector), and garbage is still freed."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import served

# As the benchmark's c=16, all in the app at once: the load that set off full collections (an
# API that raises GUNICORN_THREADS for slow queries runs as many; the default 8 holds half).
CLIENTS = 16
REQUESTS_PER_CLIENT = 150  # 2,400 in all: with CPython's defaults, 2-5 full collections
GROWTH_MAX_BYTES = 20 << 20


def gc_stats(port: int) -> dict[str, object]:
    status, _, body = served.get(port, "/test/gc")
    assert status == 200, body
    return dict(json.loads(body))


def client_session(port: int) -> list[int]:
    """One kept-alive connection: items created and listed in turn, as fast as answered."""
    statuses = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for n in range(REQUESTS_PER_CLIENT):
            if n % 2:
                connection.request("GET", "/api/v1/items?limit=20")
            else:
                body = json.dumps({"name": f"item {n}"})
                connection.request(
                    "POST", "/api/v1/items", body, {"Content-Type": "application/json"}
                )
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()
    return statuses


def test_requests_in_flight_set_off_no_full_collection(migrated_url: str, tmp_path: Path):
    # Given the shipped worker running 16 requests at once on a real database, warmed up
    with served.gunicorn(
        "gc_stats_wsgi:create_app()",
        tmp_path,
        FLASK_DATABASE_URL=migrated_url,
        GUNICORN_THREADS=str(CLIENTS),
    ) as server:
        client_session(server.port)  # the pool filled, every code path run once
        before = gc_stats(server.port)

        # When 16 clients each make 150 requests, without pause
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            sessions = list(pool.map(client_session, [server.port] * CLIENTS))
        after = gc_stats(server.port)

    # Then every request succeeded, no full collection stopped them (each walks the whole
    # heap: 30-65 ms), and memory did not grow with the garbage left for later
    assert {status for statuses in sessions for status in statuses} <= {200, 201}
    young, middle, full = (
        a - b for a, b in zip(after["collections"], before["collections"], strict=True)
    )
    assert full == 0, (young, middle, full)
    assert after["rss_bytes"] - before["rss_bytes"] < GROWTH_MAX_BYTES
