"""Messages of every channel, their status events, and the webhook outbox.

The ``messages`` row is also the delivery queue (design section 1): a dispatcher
claims due rows (``next_attempt_at``) by taking a lease on them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.core.ids import new_id
from tidings.db.base import Base, UtcDateTime, id_column_type

JsonDict = dict[str, Any]


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    to_address: Mapped[str] = mapped_column(String(320))
    from_address: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str | None] = mapped_column(Text)
    # Channel specifics: media, replyTo, html, cc, attachments, template, validity...
    content: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(16))
    credits: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(0))
    batch_id: Mapped[str | None] = mapped_column(id_column_type())
    # The kind of the provider that took the message, and that provider (prv_...).
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # While a dispatcher holds the message, next_attempt_at is its lease's end: a
    # dispatcher that dies leaves the row due again when the lease runs out.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        # The queue: due rows of the non-final statuses that still need a send, in
        # two lanes. Single sends are claimed before batch messages (they keep their
        # latency while a batch drains), and each claim names its lane, so a message
        # is kept in one of the two indexes, not both.
        Index(
            "ix_messages_due_batch",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL AND batch_id IS NOT NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL AND batch_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_due_single",
            "next_attempt_at",
            postgresql_where=text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
            sqlite_where=text("next_attempt_at IS NOT NULL AND batch_id IS NULL"),
        ),
        Index("ix_messages_listing", "account_id", "environment", "id"),
        Index("ix_messages_contact", "account_id", "environment", "channel", "to_address"),
        # A provider's messages still in flight (may it be deleted?).
        Index(
            "ix_messages_provider",
            "provider_id",
            "status",
            postgresql_where=text("provider_id IS NOT NULL"),
            sqlite_where=text("provider_id IS NOT NULL"),
        ),
        # A batch's counts per status are read from the index alone. Single sends
        # (no batch) are left out: their status changes need not keep it.
        Index(
            "ix_messages_batch",
            "batch_id",
            "status",
            postgresql_where=text("batch_id IS NOT NULL"),
            sqlite_where=text("batch_id IS NOT NULL"),
        ),
    )


class MessageEvent(Base):
    """One status change (or a late receipt recorded without a change)."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    applied: Mapped[bool] = mapped_column(default=True)
    # Set for what is not a status report: "retry", "opened", "clicked", "complained"...
    kind: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[JsonDict | None] = mapped_column(JSON)


class OutboxEvent(Base):
    """An event for the webhooks, written in the transaction of the change it tells."""

    __tablename__ = "outbox_events"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(id_column_type())
    payload: Mapped[JsonDict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_outbox_events_account", "account_id", "environment", "id"),)

    @classmethod
    def new(
        cls,
        *,
        account_id: str,
        environment: str,
        event_type: str,
        subject_id: str,
        payload: JsonDict,
        at: datetime,
    ) -> OutboxEvent:
        return cls(
            id=new_id("evt"),
            account_id=account_id,
            environment=environment,
            type=event_type,
            subject_id=subject_id,
            payload=payload,
            created_at=at,
        )
