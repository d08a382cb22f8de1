"""messages: leaner indexes for the queue and the provider's ids

Every index of ``messages`` is kept up at each insert and each status change of a
send, and every page it touches is written by the commit, so two go:

- ``ix_messages_due`` held every due message and ``ix_messages_due_single`` the
  single sends among them, so each single send was entered in both at its insert,
  moved in both at its claim and left both at its verdict. Every claim names its
  lane (``batch_id IS NULL`` or ``IS NOT NULL``), so the first becomes
  ``ix_messages_due_batch``, the batch messages only: a message is kept in one due
  index, not two.
- ``ix_messages_provider_id`` (the provider's id of each sent message) was read by
  no query: receipts find their message through ``provider_refs``, which holds
  every id a provider gave (one per part of a long SMS).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_DUE = "next_attempt_at IS NOT NULL"
_DUE_BATCH = "next_attempt_at IS NOT NULL AND batch_id IS NOT NULL"
_SENT = "provider_message_id IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_messages_due_batch",
        "messages",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(_DUE_BATCH),
        sqlite_where=sa.text(_DUE_BATCH),
    )
    op.drop_index("ix_messages_due", table_name="messages")
    op.drop_index("ix_messages_provider_id", table_name="messages")


def downgrade() -> None:
    op.create_index(
        "ix_messages_provider_id",
        "messages",
        ["provider_message_id"],
        unique=False,
        postgresql_where=sa.text(_SENT),
        sqlite_where=sa.text(_SENT),
    )
    op.create_index(
        "ix_messages_due",
        "messages",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(_DUE),
        sqlite_where=sa.text(_DUE),
    )
    op.drop_index("ix_messages_due_batch", table_name="messages")
