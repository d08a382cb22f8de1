"""The tables of the provider seam.

- ``providers``: one configured provider (an SMTP relay, an SMPP account, a
  WhatsApp number, or the simulator on purpose) of one account and environment,
  its public config, its sealed secrets, its health;
- ``provider_refs``: every id a provider gave a message (a long SMS has one per
  part), ``(provider_id, external_id)`` unique: how reports find their message;
- ``inbox_events``: what providers reported, stored raw before it is acknowledged,
  ``(provider_id, dedupe_key)`` unique so a repeat is stored once; applied later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The config without its secrets (camelCase, as answered).
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Secret name -> sealed value (tidings.core.key_ring); never in clear.
    secrets: Mapped[dict[str, str]] = mapped_column(JSON)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Set by a delete while messages were still in flight: hidden, disabled, and
    # removed by housekeeping once they are final.
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_providers_route", "account_id", "environment", "channel", "priority"),
    )


class ProviderRefRow(Base):
    __tablename__ = "provider_refs"

    provider_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    part: Mapped[int | None] = mapped_column(Integer)
    recipient: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InboxEvent(Base):
    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(191))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending -> done; or unmatched (no message after the waiting time) or parked
    # (could not be applied, with the error).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("provider_id", "dedupe_key"),
        Index(
            "ix_inbox_events_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_inbox_events_provider_state", "provider_id", "state", "id"),
    )
