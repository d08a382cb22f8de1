"""The contacts' tables, each per account and environment: opt-outs per channel
(STOP / START), contacts, lists and list memberships."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import JSON, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class OptOut(Base):
    __tablename__ = "opt_outs"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    environment: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Contact(Base):
    """A person an account writes to: a phone, an email, or both, and variables.

    ``phone`` is E.164 and ``email`` lower-cased, each unique per account and
    environment (NULLs never collide). ``search_text`` holds the phone, the email
    and the variable values, lower-cased, so that ``?search=`` is one LIKE.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "environment", "phone"),
        UniqueConstraint("account_id", "environment", "email"),
        Index("ix_contacts_listing", "account_id", "environment", "id"),
    )

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    variables: Mapped[dict[str, str]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ContactList(Base):
    __tablename__ = "contact_lists"
    __table_args__ = (Index("ix_contact_lists_listing", "account_id", "environment", "id"),)

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ListMember(Base):
    """A contact's membership of a list; both belong to one account and environment
    (checked when the membership is written)."""

    __tablename__ = "contact_list_members"

    list_id: Mapped[str] = mapped_column(
        ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


# Typed handles on the tables for Core statements (the bulk paths).
contacts_table = cast(Table, Contact.__table__)
members_table = cast(Table, ListMember.__table__)
