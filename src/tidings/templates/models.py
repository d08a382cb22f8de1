"""The ``whatsapp_templates`` table: one row per template name and language, per
account and environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED")


class Template(Base):
    __tablename__ = "whatsapp_templates"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    rejected_reason: Mapped[str | None] = mapped_column(String(64))
    parameter_format: Mapped[str] = mapped_column(String(16))
    # As the API shows them (WhatsApp's component list, camelCase keys).
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # When the sandbox's simulated review is due; None once reviewed, and always in
    # production (where WhatsApp reviews).
    review_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("account_id", "environment", "name", "language"),
        Index("ix_whatsapp_templates_listing", "account_id", "environment", "status", "id"),
        Index(
            "ix_whatsapp_templates_review",
            "review_due_at",
            postgresql_where=text("review_due_at IS NOT NULL"),
            sqlite_where=text("review_due_at IS NOT NULL"),
        ),
    )
