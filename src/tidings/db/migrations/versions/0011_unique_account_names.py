"""accounts.name is unique: lookups by name (``--account "Acme Ltd"``) need one answer

Existing duplicates keep their oldest holder's name; the others get their id appended
("Acme Ltd (acc_...)"), so that nothing is lost and every name still reads as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(accounts.c.id, accounts.c.name).order_by(
            accounts.c.name, accounts.c.created_at, accounts.c.id
        )
    ).all()
    seen: set[str] = set()
    for account_id, name in rows:
        if name in seen:
            renamed = f"{name[: 200 - len(account_id) - 3]} ({account_id})"
            connection.execute(
                accounts.update().where(accounts.c.id == account_id).values(name=renamed)
            )
        seen.add(name)
    op.create_index("ix_accounts_name", "accounts", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_accounts_name", table_name="accounts")
