"""whatsapp templates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejected_reason", sa.String(length=64), nullable=True),
        sa.Column("parameter_format", sa.String(length=16), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("review_due_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_whatsapp_templates_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_templates")),
        sa.UniqueConstraint(
            "account_id",
            "environment",
            "name",
            "language",
            name=op.f("uq_whatsapp_templates_account_id_environment_name_language"),
        ),
    )
    with op.batch_alter_table("whatsapp_templates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_whatsapp_templates_listing",
            ["account_id", "environment", "status", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_whatsapp_templates_review",
            ["review_due_at"],
            unique=False,
            postgresql_where=sa.text("review_due_at IS NOT NULL"),
            sqlite_where=sa.text("review_due_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_templates", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_whatsapp_templates_review",
            postgresql_where=sa.text("review_due_at IS NOT NULL"),
            sqlite_where=sa.text("review_due_at IS NOT NULL"),
        )
        batch_op.drop_index("ix_whatsapp_templates_listing")

    op.drop_table("whatsapp_templates")
