"""GET /api/v1/info: what is running, and never a secret."""

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from backend_api import create_app


def test_info_names_the_app_its_version_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ConfigMap values for the name and environment
    monkeypatch.setenv("FLASK_APP_NAME", "orders")
    monkeypatch.setenv("FLASK_ENVIRONMENT", "staging")
    client = create_app({"TESTING": True}).test_client()
    # When info is requested
    response = client.get("/api/v1/info")
    # Then it reports them with the package version
    assert response.status_code == 200
    assert response.json == {"name": "orders", "version": "0.1.0", "environment": "staging"}


def test_info_contains_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given secrets in the secrets dir
    (tmp_path / "SECRET_KEY").write_text("signing-key-value")
    (tmp_path / "DATABASE_URL").write_text("postgresql://app:db-password@db:5432/app")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    client = create_app().test_client()
    # When info is requested, then no secret value is in the response
    body = client.get("/api/v1/info").get_data(as_text=True)
    assert "signing-key-value" not in body
    assert "db-password" not in body


def test_info_is_read_only(client: FlaskClient) -> None:
    assert client.post("/api/v1/info").status_code == 405
