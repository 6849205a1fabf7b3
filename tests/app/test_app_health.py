"""Probe endpoints: /startupz and /livez answer while the process works; /readyz also needs
the configured database to accept connections."""

from flask.testing import FlaskClient

from backend_api import create_app


def client_with_database_on(port: int) -> FlaskClient:
    url = f"postgresql://app:pw@127.0.0.1:{port}/app"
    return create_app({"TESTING": True, "DATABASE_URL": url}).test_client()


def test_startup_probe_is_ok_once_the_app_is_built(client: FlaskClient) -> None:
    response = client.get("/startupz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_liveness_is_ok(client: FlaskClient) -> None:
    response = client.get("/livez")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readiness_is_ok_without_a_database(client: FlaskClient) -> None:
    # Given no DATABASE_URL, when readiness is probed, then there is nothing to wait for
    response = client.get("/readyz")
    assert (response.status_code, response.json) == (200, {"status": "ok", "checks": {}})


def test_readiness_is_ok_when_the_database_accepts_connections(listening_port: int) -> None:
    # Given a database that listens
    client = client_with_database_on(listening_port)
    # When readiness is probed, then it is ok
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok"}}


def test_readiness_fails_when_the_database_is_unreachable(closed_port: int) -> None:
    # Given a database that does not accept connections
    client = client_with_database_on(closed_port)
    # When readiness is probed, then the pod is not ready
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "fail", "checks": {"database": "fail"}}


def test_liveness_ignores_an_unreachable_database(closed_port: int) -> None:
    # Given a database that is down, when liveness is probed, then the process is still alive:
    # restarting the pod would not bring the database back
    response = client_with_database_on(closed_port).get("/livez")
    assert response.status_code == 200
