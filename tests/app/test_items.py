"""/api/v1/items on a real PostgreSQL: create, list with pagination, get; JSON errors naming the
field; 503 (not 500) when the database is gone."""

from __future__ import annotations

from flask.testing import FlaskClient

from backend_api import create_app
from tests.postgres import PostgresServer


def test_create_returns_the_stored_item_and_its_location(db_client: FlaskClient):
    response = db_client.post("/api/v1/items", json={"name": "first"})

    assert response.status_code == 201
    item = response.json
    assert item["name"] == "first"
    assert isinstance(item["id"], int)
    assert item["created_at"]
    assert response.headers["Location"] == f"/api/v1/items/{item['id']}"


def test_get_returns_what_create_stored(db_client: FlaskClient):
    created = db_client.post("/api/v1/items", json={"name": "kept"}).json

    response = db_client.get(f"/api/v1/items/{created['id']}")

    assert (response.status_code, response.json) == (200, created)


def test_get_of_a_missing_item_is_a_json_404(db_client: FlaskClient):
    response = db_client.get("/api/v1/items/999999")

    assert response.status_code == 404
    assert response.json == {"error": {"status": 404, "message": "item 999999 does not exist"}}


def test_list_pages_through_every_item_in_order(db_client: FlaskClient):
    names = [f"item {n}" for n in range(7)]
    for name in names:
        db_client.post("/api/v1/items", json={"name": name})

    seen, url = [], "/api/v1/items?limit=3"
    while url:
        page = db_client.get(url).json
        assert len(page["items"]) <= 3
        seen += [item["name"] for item in page["items"]]
        url = page["next"]

    assert seen == names


def test_an_empty_list_has_no_next_page(db_client: FlaskClient):
    assert db_client.get("/api/v1/items").json == {"items": [], "next": None}


def test_invalid_fields_are_a_422_naming_the_field(db_client: FlaskClient):
    for body, field in (
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "owner": "me"}, "owner"),
        ([1, 2], "JSON object"),
    ):
        response = db_client.post("/api/v1/items", json=body)
        assert response.status_code == 422, body
        assert field in response.json["error"]["message"]


def test_a_body_that_is_not_json_is_a_json_4xx(db_client: FlaskClient):
    malformed = db_client.post("/api/v1/items", data="{not json", content_type="application/json")
    form = db_client.post("/api/v1/items", data={"name": "x"})

    assert malformed.status_code == 400
    assert form.status_code == 415
    assert malformed.json["error"]["status"] == 400
    assert form.json["error"]["status"] == 415


def test_bad_pagination_parameters_are_a_400_naming_them(db_client: FlaskClient):
    for query, name in (("limit=0", "limit"), ("limit=101", "limit"), ("after=-1", "after")):
        response = db_client.get(f"/api/v1/items?{query}")
        assert response.status_code == 400, query
        assert name in response.json["error"]["message"]


def test_a_database_outage_answers_503_and_recovers_by_itself(
    postgres: PostgresServer, db_client: FlaskClient
):
    assert db_client.post("/api/v1/items", json={"name": "before"}).status_code == 201

    postgres.stop()
    try:
        during = db_client.get("/api/v1/items")
    finally:
        postgres.start()
    after = db_client.get("/api/v1/items")

    assert during.status_code == 503
    assert during.json["error"]["status"] == 503
    assert after.status_code == 200
    assert [item["name"] for item in after.json["items"]] == ["before"]


def test_without_a_database_the_items_api_answers_503():
    client = create_app({"TESTING": True}).test_client()

    response = client.get("/api/v1/items")

    assert response.status_code == 503
