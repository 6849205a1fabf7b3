"""MAX_REQUEST_BYTES (FlaskBackend's max_request_bytes) becomes Flask's MAX_CONTENT_LENGTH: a
larger body is refused with a JSON 413 before the view sees it."""

import pytest
from flask import request

from backend_api import create_app
from backend_api.config import ConfigError


def app_with_echo() -> object:
    app = create_app({"TESTING": True})

    @app.post("/echo-length")
    def echo_length() -> dict[str, int]:
        return {"length": len(request.get_data())}

    return app


def test_a_body_up_to_max_request_bytes_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000")
    client = app_with_echo().test_client()  # type: ignore[attr-defined]

    response = client.post("/echo-length", data=b"x" * 1000)

    assert response.status_code == 200
    assert response.get_json() == {"length": 1000}


def test_a_larger_body_gets_a_json_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000")
    client = app_with_echo().test_client()  # type: ignore[attr-defined]

    response = client.post("/echo-length", data=b"x" * 1001)

    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413


def test_the_default_is_the_constructs_1_mib() -> None:
    assert create_app({"TESTING": True}).config["MAX_CONTENT_LENGTH"] == 1024 * 1024


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "lots"])
def test_a_bad_value_stops_the_app(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MAX_REQUEST_BYTES", value)

    with pytest.raises(
        ConfigError, match=f"^MAX_REQUEST_BYTES must be a positive integer, got '{value}'$"
    ):
        create_app({"TESTING": True})
