"""Alembic environment: runs on the connection handed in by :mod:`tidings.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tidings.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tidings migrate` (tidings.db.migrate)")
_run(connection)
