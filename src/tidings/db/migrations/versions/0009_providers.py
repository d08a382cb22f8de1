"""providers, provider refs and the inbox; provider_configs moved into providers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 07:30:00.000000
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

import tidings.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _provider_id() -> str:
    # The id format of tidings.core.ids, frozen here: a ULID after the prefix.
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "prv_" + "".join(reversed(chars))


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", tidings.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_providers_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
    )
    op.create_index(
        "ix_providers_route",
        "providers",
        ["account_id", "environment", "channel", "priority"],
        unique=False,
    )
    op.create_table(
        "provider_refs",
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=191), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("part", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("created_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_provider_refs_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "external_id", name=op.f("pk_provider_refs")),
    )
    op.create_index(
        op.f("ix_provider_refs_message_id"), "provider_refs", ["message_id"], unique=False
    )
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=191), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint(
            "provider_id", "dedupe_key", name=op.f("uq_inbox_events_provider_id_dedupe_key")
        ),
    )
    op.create_index(
        "ix_inbox_events_due",
        "inbox_events",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_inbox_events_provider_state",
        "inbox_events",
        ["provider_id", "state", "id"],
        unique=False,
    )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.String(length=40), nullable=True))
        batch_op.create_index(
            "ix_messages_provider",
            ["provider_id", "status"],
            unique=False,
            postgresql_where=sa.text("provider_id IS NOT NULL"),
            sqlite_where=sa.text("provider_id IS NOT NULL"),
        )

    _move_provider_configs()
    op.drop_table("provider_configs")


def _move_provider_configs() -> None:
    """Each account's per-channel provider becomes a production provider, priority 1.
    The only kind that existed is the simulator, which has no secrets."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT account_id, channel, kind, config, updated_at FROM provider_configs")
    ).fetchall()
    providers = sa.table(
        "providers",
        *(
            sa.column(name)
            for name in [
                "id",
                "account_id",
                "environment",
                "channel",
                "kind",
                "name",
                "priority",
                "enabled",
                "config",
                "secrets",
                "health",
                "last_error",
                "created_at",
                "updated_at",
                "deleted_at",
            ]
        ),
    )
    for account_id, channel, kind, config, updated_at in rows:
        value: Any = json.loads(config) if isinstance(config, str) else config
        connection.execute(
            providers.insert().values(
                id=_provider_id(),
                account_id=account_id,
                environment="production",
                channel=channel,
                kind=kind,
                name=f"{kind} ({channel})",
                priority=1,
                enabled=True,
                config=json.dumps(value or {}),
                secrets="{}",
                health="unknown",
                last_error=None,
                created_at=updated_at,
                updated_at=updated_at,
                deleted_at=None,
            )
        )


def downgrade() -> None:
    op.create_table(
        "provider_configs",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", tidings.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_provider_configs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "channel", name=op.f("pk_provider_configs")),
    )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_provider")
        batch_op.drop_column("provider_id")
    op.drop_index("ix_inbox_events_provider_state", table_name="inbox_events")
    op.drop_index("ix_inbox_events_due", table_name="inbox_events")
    op.drop_table("inbox_events")
    op.drop_index(op.f("ix_provider_refs_message_id"), table_name="provider_refs")
    op.drop_table("provider_refs")
    op.drop_index("ix_providers_route", table_name="providers")
    op.drop_table("providers")
