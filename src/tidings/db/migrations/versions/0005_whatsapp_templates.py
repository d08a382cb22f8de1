"""whatsapp templates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    _seed_existing_sandboxes()


def _seed_existing_sandboxes() -> None:
    """Accounts made before templates existed get the sandbox's seed set too, as new
    accounts do (the set as it stood at this revision)."""
    from tidings.core.ids import new_id
    from tidings.templates.seed_data import SEED
    from tidings.templates.shape import parameter_format_of

    bind = op.get_bind()
    accounts = [row[0] for row in bind.execute(sa.text("SELECT id FROM accounts"))]
    if not accounts:
        return
    table = sa.table(
        "whatsapp_templates",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("environment", sa.String),
        sa.column("name", sa.String),
        sa.column("language", sa.String),
        sa.column("category", sa.String),
        sa.column("status", sa.String),
        sa.column("parameter_format", sa.String),
        sa.column("components", sa.JSON),
        sa.column("created_at", tidings.db.base.UtcDateTime(timezone=True)),
        sa.column("updated_at", tidings.db.base.UtcDateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        table,
        [
            {
                "id": new_id("tpl"),
                "account_id": account,
                "environment": "sandbox",
                "name": name,
                "language": language,
                "category": category,
                "status": "APPROVED",
                "parameter_format": parameter_format_of(components),
                "components": components,
                "created_at": now,
                "updated_at": now,
            }
            for account in accounts
            for name, language, category, components in SEED
        ],
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
