"""whatsapp_contacts: WhatsApp contacts by business-scoped user id, the phone optional

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_contacts",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=160), nullable=False),
        sa.Column("user_id", sa.String(length=160), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_whatsapp_contacts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "environment", "address", name=op.f("pk_whatsapp_contacts")
        ),
        sa.UniqueConstraint(
            "account_id",
            "environment",
            "user_id",
            name=op.f("uq_whatsapp_contacts_account_id_environment_user_id"),
        ),
    )
    with op.batch_alter_table("whatsapp_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_whatsapp_contacts_phone", ["account_id", "environment", "phone"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_whatsapp_contacts_phone")
    op.drop_table("whatsapp_contacts")
