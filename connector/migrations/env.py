"""Alembic environment: runs on the connection the connector hands over (never reads a URL of its own)."""

from __future__ import annotations

from alembic import context

from connector.persistence.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through connector.persistence.migrate.upgrade(engine)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
