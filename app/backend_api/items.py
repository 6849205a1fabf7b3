"""/api/v1/items: a small persisted resource. Create, list (keyset pagination), get.

JSON in and out. Invalid input is a JSON 4xx naming the field: 400 for malformed JSON or query
parameters, 415 for a body that is not JSON, 422 for a JSON object with invalid fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from flask import Blueprint, request, url_for
from sqlalchemy import BigInteger, DateTime, Identity, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import BadRequest, NotFound, UnprocessableEntity

from backend_api.db import Base, engine

NAME_MAX_LENGTH: Final = 200
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100

bp = Blueprint("items", __name__, url_prefix="/api/v1/items")


class Item(Base):
    __tablename__ = "items"
    # The INSERT returns the server-made id and created_at: no extra SELECT per create.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's class attribute

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


@bp.post("")
def create() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = request.get_json()  # 415 unless application/json, 400 when it does not parse
    if not isinstance(body, dict):
        raise UnprocessableEntity('the body must be a JSON object, like {"name": "..."}')
    unknown = sorted(set(body) - {"name"})
    if unknown:
        raise UnprocessableEntity(f"unknown fields {unknown}; allowed: name")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX_LENGTH:
        raise UnprocessableEntity(
            f"name must be a non-blank string of at most {NAME_MAX_LENGTH} characters"
        )
    if not storable(name):
        raise UnprocessableEntity(
            "name must be text PostgreSQL can store: no NUL (\\u0000), no unpaired surrogate"
        )
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        item = Item(name=name)
        session.add(item)
    location = url_for("items.get", item_id=item.id)
    return item.to_json(), 201, {"Location": location}


@bp.get("")
def list_items() -> dict[str, Any]:
    """Items in id order, ``limit`` at a time; ``next`` is the URL of the following page (null
    on the last). Keyset pagination: pages stay stable while items are added."""
    limit = _query_int("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    after = _query_int("after", 0, low=0, high=2**63 - 1)
    with Session(engine()) as session:
        rows = session.scalars(
            select(Item).where(Item.id > after).order_by(Item.id).limit(limit + 1)
        ).all()
    page = rows[:limit]
    following = (
        url_for("items.list_items", after=page[-1].id, limit=limit) if len(rows) > limit else None
    )
    return {"items": [item.to_json() for item in page], "next": following}


@bp.get("/<int:item_id>")
def get(item_id: int) -> dict[str, Any]:
    with Session(engine()) as session:
        item = session.get(Item, item_id) if item_id < 2**63 else None
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    return item.to_json()


def storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: JSON's escapes can make characters that it
    refuses (NUL) or that UTF-8 cannot encode (a lone surrogate), which the driver would
    report as a database error (503) or a crash (500) instead of the client's 422."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _query_int(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, got {raw[:40]!r}")
    return int(raw)
