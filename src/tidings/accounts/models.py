"""Accounts and their users. An account spans both environments; its data rows
(messages, webhooks, contacts, ...) each carry the environment they belong to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    # Unique: the command line finds accounts by name (migration 0011).
    name: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    # ISO 3166 code national numbers are read in for this account (else the deployment's).
    phone_default_country: Mapped[str | None] = mapped_column(String(2), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
