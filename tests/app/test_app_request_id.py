"""Request ids: a sane incoming X-Request-ID is kept, otherwise one is generated; either way
the response carries it."""

import re

import pytest
from flask.testing import FlaskClient

GENERATED = re.compile(r"[0-9a-f]{32}")  # uuid4().hex


def test_incoming_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/livez", headers={"X-Request-ID": "edge-7f3a.b_c-1"})
    assert response.headers["X-Request-ID"] == "edge-7f3a.b_c-1"


def test_request_id_is_generated_when_absent(client: FlaskClient) -> None:
    first = client.get("/livez").headers["X-Request-ID"]
    second = client.get("/livez").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "semi;colon", "<script>", "x" * 129],
    ids=["empty", "space", "semicolon", "markup", "too-long"],
)
def test_request_id_that_is_not_a_sane_token_is_replaced(
    client: FlaskClient, incoming: str
) -> None:
    response = client.get("/livez", headers={"X-Request-ID": incoming})
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_error_responses_carry_the_request_id(client: FlaskClient) -> None:
    response = client.get("/missing", headers={"X-Request-ID": "req-404"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "req-404"
