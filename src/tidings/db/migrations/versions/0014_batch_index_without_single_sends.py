"""messages: ix_messages_batch holds batch messages only (partial, batch_id IS NOT NULL)

Single sends have no batch, yet every status change of theirs rewrote their entry in
the index (the status is its second column): one index less to keep per change of the
sends that matter most for speed, and fewer pages for each commit to write. Every
query that uses the index asks for a batch (``batch_id = ...``), which the partial
index answers on SQLite and PostgreSQL alike.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_BATCHED = "batch_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_messages_batch", table_name="messages")
    op.create_index(
        "ix_messages_batch",
        "messages",
        ["batch_id", "status"],
        unique=False,
        postgresql_where=sa.text(_BATCHED),
        sqlite_where=sa.text(_BATCHED),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_batch", table_name="messages")
    op.create_index("ix_messages_batch", "messages", ["batch_id", "status"], unique=False)
