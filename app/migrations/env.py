"""Alembic's environment: runs the migrations on the connection backend_api.migrate hands over
(holding the advisory lock), inside one transaction: a failure leaves the schema untouched."""

from alembic import context

from backend_api import items  # noqa: F401 - registers the app's tables on Base.metadata
from backend_api.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m backend_api.migrate upgrade`")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
