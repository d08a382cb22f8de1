"""batches and pacing

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("credits", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("scheduled_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_batches_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_batches_listing", ["account_id", "environment", "id"], unique=False
        )
        batch_op.create_index("ix_batches_status", ["status"], unique=False)

    op.create_table(
        "pace_slots",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("next_free", sa.Float(), nullable=False),
        sa.Column("slowed_until", sa.Float(), nullable=False),
        sa.Column("slow_factor", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pace_slots")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_batch")
        batch_op.create_index("ix_messages_batch", ["batch_id", "status"], unique=False)
        batch_op.drop_index("ix_messages_provider_id")
        batch_op.create_index(
            "ix_messages_provider_id",
            ["provider_message_id"],
            unique=False,
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_messages_due_single",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
            sqlite_where=sa.text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_messages_due_single",
            postgresql_where=sa.text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
            sqlite_where=sa.text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
        )
        batch_op.drop_index("ix_messages_batch")
        batch_op.create_index("ix_messages_batch", ["batch_id"], unique=False)
        batch_op.drop_index("ix_messages_provider_id")
        batch_op.create_index("ix_messages_provider_id", ["provider_message_id"], unique=False)
    op.drop_table("pace_slots")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index("ix_batches_status")
        batch_op.drop_index("ix_batches_listing")
    op.drop_table("batches")
