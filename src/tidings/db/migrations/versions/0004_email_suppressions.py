"""email suppressions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_suppressions",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_suppressions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "environment", "address", name=op.f("pk_email_suppressions")
        ),
    )
    with op.batch_alter_table("email_suppressions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_suppressions_listing",
            ["account_id", "environment", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("email_suppressions", schema=None) as batch_op:
        batch_op.drop_index("ix_email_suppressions_listing")

    op.drop_table("email_suppressions")
