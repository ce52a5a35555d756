"""Alembic environment: runs against the engine the store hands over (or a URL)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

from trackpulse.store import models  # noqa: F401 - registers the tables on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()


def run_migrations_online() -> None:
    # `store.db.migrate` hands over a connection already inside the transaction that holds
    # the migration lock, so the upgrade commits (and the lock ends) together.
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes.get("engine")
    if engine is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///trackpulse.db")
    with engine.begin() as conn:
        _run(conn)


run_migrations_online()
