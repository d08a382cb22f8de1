"""shared contents: what every message of a batch carries alike, stored once

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_contents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_shared_contents_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_contents")),
    )
    with op.batch_alter_table("shared_contents", schema=None) as batch_op:
        batch_op.create_index("ix_shared_contents_batch", ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shared_contents", schema=None) as batch_op:
        batch_op.drop_index("ix_shared_contents_batch")
    op.drop_table("shared_contents")
