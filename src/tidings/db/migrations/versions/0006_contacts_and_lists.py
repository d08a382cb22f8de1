"""contacts and lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contacts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint(
            "account_id",
            "environment",
            "phone",
            name=op.f("uq_contacts_account_id_environment_phone"),
        ),
        sa.UniqueConstraint(
            "account_id",
            "environment",
            "email",
            name=op.f("uq_contacts_account_id_environment_email"),
        ),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contacts_listing", ["account_id", "environment", "id"], unique=False
        )

    op.create_table(
        "contact_lists",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contact_lists_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_lists")),
    )
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_lists_listing", ["account_id", "environment", "id"], unique=False
        )

    op.create_table(
        "contact_list_members",
        sa.Column("list_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_list_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_lists.id"],
            name=op.f("fk_contact_list_members_list_id_contact_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "contact_id", name=op.f("pk_contact_list_members")),
    )
    with op.batch_alter_table("contact_list_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_list_members_contact_id"), ["contact_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("contact_list_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_list_members_contact_id"))

    op.drop_table("contact_list_members")
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_lists_listing")

    op.drop_table("contact_lists")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_listing")

    op.drop_table("contacts")
