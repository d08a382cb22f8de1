"""The ``email_domains`` table: one sending domain of one account and environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class EmailDomain(Base):
    __tablename__ = "email_domains"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    domain: Mapped[str] = mapped_column(String(253))
    # The DKIM selectors are "<selector>-rsa" and "<selector>-ed".
    selector: Mapped[str] = mapped_column(String(63))
    rsa_public: Mapped[str] = mapped_column(Text)
    ed25519_public: Mapped[str] = mapped_column(Text)
    # "rsa" -> sealed PEM, "ed25519" -> sealed base64 seed (tidings.core.key_ring).
    secrets: Mapped[dict[str, str]] = mapped_column(JSON)
    # pending | verified | failing
    status: Mapped[str] = mapped_column(String(16))
    # The last check: purpose -> {"status", "found": [...]}.
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("account_id", "environment", "domain"),)
