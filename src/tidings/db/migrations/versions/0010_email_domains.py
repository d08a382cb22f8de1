"""email_domains: an account's sending domains, their sealed DKIM keys and DNS checks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_domains",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("rsa_public", sa.Text(), nullable=False),
        sa.Column("ed25519_public", sa.Text(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("checked_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("verified_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_domains_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_domains")),
        sa.UniqueConstraint(
            "account_id",
            "environment",
            "domain",
            name=op.f("uq_email_domains_account_id_environment_domain"),
        ),
    )


def downgrade() -> None:
    op.drop_table("email_domains")
