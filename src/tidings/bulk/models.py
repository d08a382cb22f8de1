"""Batches (one bulk request each), the content their messages share, and the
shared pacing state of the providers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class Batch(Base):
    """One bulk request. The counts of the request are fixed when it is accepted;
    the counts per status are read from its messages, so they always add up."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    # scheduled | accepted | completed | canceled
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    credits: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))
    # The first 1,000 rejections, as the answer listed them.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_batches_listing", "account_id", "environment", "id"),
        Index("ix_batches_status", "status"),
    )


class SharedContent(Base):
    """What every message of a batch carries alike (an email's attachments, and its
    text or HTML when no variable changes them), stored once. A message's content
    names it under ``"shared"`` (:mod:`tidings.bulk.shared`); it never changes after
    the batch is accepted, so any process may cache it."""

    __tablename__ = "shared_contents"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_shared_contents_batch", "batch_id"),)


class PaceSlot(Base):
    """A rate limit shared by every dispatcher process: the earliest time the next
    message under this key may go (a virtual schedule, GCRA-style)."""

    __tablename__ = "pace_slots"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Seconds since the epoch, as a float: the schedule's resolution is sub-millisecond.
    next_free: Mapped[float] = mapped_column(Float)
    # A provider that answered "slow down" lowers the rate until this time.
    slowed_until: Mapped[float] = mapped_column(Float, default=0.0)
    slow_factor: Mapped[float] = mapped_column(Float, default=1.0)
