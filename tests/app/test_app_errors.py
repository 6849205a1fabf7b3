"""Errors are JSON ({"error": {"status", "message"}}), never an HTML page."""

import json

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from backend_api import create_app


def test_unknown_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.content_type == "application/json"
    assert response.json == {
        "error": {
            "status": 404,
            "message": "The requested URL was not found on the server. If you entered the URL"
            " manually please check your spelling and try again.",
        }
    }


def test_wrong_method_is_a_json_405_that_lists_the_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/livez")
    assert response.status_code == 405
    assert response.json == {
        "error": {"status": 405, "message": "The method is not allowed for the requested URL."}
    }
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_malformed_json_body_is_a_json_400(app: Flask) -> None:
    # Given a route that reads a JSON body
    @app.post("/parse")
    def parse() -> dict[str, object]:
        return {"got": request.get_json()}

    # When the body is not JSON
    response = app.test_client().post("/parse", data="{not json", content_type="application/json")
    # Then the error is JSON too, with werkzeug's generic description
    assert response.status_code == 400
    assert response.content_type == "application/json"
    assert response.json == {
        "error": {
            "status": 400,
            "message": "The browser (or proxy) sent a request that this server could not"
            " understand.",
        }
    }


def test_unhandled_exception_is_a_json_500_that_hides_the_details(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an app that lets the error handler answer (as in production) and a failing route
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("internal detail: connection string xyz")

    # When it is requested
    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-500"})
    # Then the client gets a generic JSON 500, without the exception
    assert response.status_code == 500
    assert response.json == {
        "error": {
            "status": 500,
            "message": "The server encountered an internal error and was unable to complete"
            " your request. Either the server is overloaded or there is an error in the"
            " application.",
        }
    }
    assert "internal detail" not in response.get_data(as_text=True)
    # And the log has one JSON line with the traceback and the request id
    (line,) = capsys.readouterr().out.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["message"] == "Exception on /boom [GET]"
    assert entry["request_id"] == "req-500"
    assert "RuntimeError: internal detail" in entry["exception"]
