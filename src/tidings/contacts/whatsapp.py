"""WhatsApp contacts as Meta names them: a business-scoped user id, a phone, or both.

Since 2026 Meta's webhooks carry each contact's business-scoped user id
(``contacts[].user_id``, e.g. ``US.13491208655302741918``) and, when it has one
to give, the phone number (``wa_id``); a contact who chose a username may write
in with no phone at all. :class:`WhatsAppContact` remembers, per account and
environment, what Meta has told about each contact who wrote in.

A conversation (the messages' ``to_address`` / ``from_address``) is keyed by its
**address**: the contact's phone number when Meta gave one the first time the
contact was seen, otherwise its user id. The address never changes afterwards,
so a history never splits: when a contact first seen by user id later shows its
phone, the phone is recorded beside it and addresses the same conversation.
:func:`resolve` turns what a caller gives (a phone, a user id) into that
address (:func:`address_of` reads a chat id too); :func:`remember` records an
inbound message's contact and says which address the message belongs to.

A contact who changes its number or its user id (Meta's ``system`` messages
``user_changed_number`` / ``user_changed_user_id``) keeps its address:
:func:`change` records the new phone and user id on the same row, so that what
the contact writes from the new one lands in the same conversation, and
:func:`delivery_target` tells the sends where the contact is reached now when
that is no longer its address. :func:`learn` records the user id a status of
our own send shows beside a phone, so that a later message carrying only the
user id finds the phone's conversation. The chat ids and the user ids' form are
pure channel knowledge (:mod:`tidings.channels.whatsapp.chats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tidings.channels.whatsapp.chats import MAX_CHAT_ID as USER_ID_MAX
from tidings.channels.whatsapp.chats import contact_of, is_user_id
from tidings.core.environments import Environment
from tidings.db.base import Base, UtcDateTime


class WhatsAppContact(Base):
    """One contact who wrote in on WhatsApp, under its conversation's address."""

    __tablename__ = "whatsapp_contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "environment", "user_id"),
        Index("ix_whatsapp_contacts_phone", "account_id", "environment", "phone"),
    )

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    environment: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(USER_ID_MAX), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(USER_ID_MAX))
    phone: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(frozen=True, slots=True)
class SeenContact:
    """What one inbound message says of its sender."""

    phone: str | None
    user_id: str | None
    username: str | None = None
    name: str | None = None


async def _find(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    *,
    phone: str | None,
    user_id: str | None,
) -> WhatsAppContact | None:
    """The contact known by this user id, else by this phone (user id first: a
    number can pass to someone else, a user id cannot)."""
    keys = []
    if user_id:
        keys.append(WhatsAppContact.user_id == user_id)
    if phone:
        keys.extend([WhatsAppContact.address == phone, WhatsAppContact.phone == phone])
    if not keys:
        return None
    found = list(
        await session.scalars(
            select(WhatsAppContact).where(
                WhatsAppContact.account_id == account_id,
                WhatsAppContact.environment == environment.value,
                or_(*keys),
            )
        )
    )
    if user_id:
        for contact in found:
            if contact.user_id == user_id:
                return contact
    # A phone first seen without a user id is the address of its own row.
    return next((c for c in found if c.address == phone), found[0] if found else None)


async def resolve(
    session: AsyncSession, account_id: str, environment: Environment, given: str
) -> str:
    """The conversation address for a phone (E.164) or a user id a caller gave: the
    address of the contact Meta told us about, else what was given."""
    user_id = given if is_user_id(given) else None
    contact = await _find(
        session, account_id, environment, phone=None if user_id else given, user_id=user_id
    )
    return contact.address if contact is not None else given


async def remember(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    seen: SeenContact,
    at: datetime,
) -> str:
    """Record what an inbound message says of its contact; its conversation address."""
    contact = await _find(session, account_id, environment, phone=seen.phone, user_id=seen.user_id)
    if contact is None:
        address = seen.phone or seen.user_id
        if address is None:
            raise ValueError("a WhatsApp contact has a phone, a user id, or both")
        contact = WhatsAppContact(
            account_id=account_id,
            environment=environment.value,
            address=address,
            user_id=seen.user_id,
            phone=seen.phone,
            username=seen.username,
            name=seen.name,
            updated_at=at,
        )
        session.add(contact)
        return address
    # A user id seen for the first time beside a known phone, or a phone beside a
    # known user id, joins the contact (Meta's newest word wins for the rest).
    if seen.user_id and contact.user_id is None:
        contact.user_id = seen.user_id
    if seen.phone:
        contact.phone = seen.phone
    contact.username = seen.username or contact.username
    contact.name = seen.name or contact.name
    contact.updated_at = at
    return contact.address


async def learn(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    phone: str,
    user_id: str,
    at: datetime,
) -> None:
    """Record that ``phone`` is the contact of ``user_id`` (a status of our own send
    said so). A known user id gains the phone; a known phone without a user id
    gains this one; a phone whose contact has another user id is left alone (the
    number may have passed to someone else); an unknown contact is recorded under
    the phone, the address our sends to it used."""
    contact = await _find(session, account_id, environment, phone=phone, user_id=user_id)
    if contact is None:
        session.add(
            WhatsAppContact(
                account_id=account_id,
                environment=environment.value,
                address=phone,
                user_id=user_id,
                phone=phone,
                updated_at=at,
            )
        )
        return
    if contact.user_id == user_id:
        if contact.phone != phone:
            contact.phone = phone
            contact.updated_at = at
    elif contact.user_id is None:
        contact.user_id = user_id
        contact.updated_at = at


@dataclass(frozen=True, slots=True)
class Changed:
    """A contact's number or user id changed: its conversation and what it was."""

    address: str
    previous_phone: str | None
    previous_user_id: str | None
    phone: str | None
    user_id: str | None


async def change(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    *,
    previous_phone: str | None,
    previous_user_id: str | None,
    phone: str | None,
    user_id: str | None,
    at: datetime,
) -> Changed | None:
    """Record a contact's new phone and/or user id on its row (found by the old
    ones, else by the new ones); None when the contact is known by none of them
    (it never wrote in and was never written to: nothing to continue)."""
    contact = await _find(
        session, account_id, environment, phone=previous_phone, user_id=previous_user_id
    )
    if contact is None:
        contact = await _find(session, account_id, environment, phone=phone, user_id=user_id)
    if contact is None:
        return None
    before_phone, before_user_id = contact.phone, contact.user_id
    if phone:
        contact.phone = phone
    if user_id and user_id != contact.user_id:
        holder = await _find(session, account_id, environment, phone=None, user_id=user_id)
        # The new user id already wrote in under a row of its own: that row keeps it
        # (a user id is unique per account), this one keeps the new phone.
        if holder is None:
            contact.user_id = user_id
    contact.updated_at = at
    return Changed(
        address=contact.address,
        previous_phone=previous_phone or before_phone,
        previous_user_id=previous_user_id or before_user_id,
        phone=contact.phone,
        user_id=contact.user_id,
    )


def reached_at(contact: WhatsAppContact) -> str | None:
    """Where a contact is reached now when that is not its address: the new phone of
    a contact addressed by a phone it changed, the new user id of one addressed by a
    user id it changed; else None (the address itself)."""
    current = contact.user_id if is_user_id(contact.address) else contact.phone
    return current if current and current != contact.address else None


async def delivery_target(
    session: AsyncSession, account_id: str, environment: Environment, address: str
) -> str | None:
    """:func:`reached_at` for the contact of a conversation address (None: send to
    the address)."""
    contact = await session.get(WhatsAppContact, (account_id, environment.value, address))
    return reached_at(contact) if contact is not None else None


async def known(
    session: AsyncSession, account_id: str, environment: Environment, addresses: list[str]
) -> dict[str, WhatsAppContact]:
    """The contacts Meta told us about, by conversation address (for a page of chats)."""
    if not addresses:
        return {}
    rows = await session.scalars(
        select(WhatsAppContact).where(
            WhatsAppContact.account_id == account_id,
            WhatsAppContact.environment == environment.value,
            WhatsAppContact.address.in_(addresses),
        )
    )
    return {row.address: row for row in rows}


def seen_of(sender: str, content: dict[str, Any]) -> SeenContact:
    """What an inbound message says of its contact: the sender (a phone or, with no
    phone, the user id) and the profile Meta sent beside it (``content.contact``:
    ``waId``, ``userId``, ``name``, ``username``)."""
    profile = content.get("contact")
    profile = profile if isinstance(profile, dict) else {}
    user_id = profile.get("userId") or (sender if is_user_id(sender) else None)
    wa_id = profile.get("waId")
    phone = sender if not is_user_id(sender) else (f"+{wa_id}" if wa_id else None)
    return SeenContact(
        phone=phone,
        user_id=str(user_id) if user_id else None,
        username=str(profile["username"])[:100] if profile.get("username") else None,
        name=str(profile["name"])[:200] if profile.get("name") else None,
    )


async def aliases(
    session: AsyncSession, account_id: str, environment: Environment
) -> dict[str, str]:
    """Every user id and phone that addresses another conversation than its own
    text (a phone whose contact was first seen by user id, a user id whose contact
    is its phone), for resolving a bulk's many recipients without a query each."""
    rows = await session.execute(
        select(WhatsAppContact.address, WhatsAppContact.user_id, WhatsAppContact.phone).where(
            WhatsAppContact.account_id == account_id,
            WhatsAppContact.environment == environment.value,
        )
    )
    found: dict[str, str] = {}
    for address, user_id, phone in rows:
        for alias in (user_id, phone):
            if alias and alias != address:
                found[alias] = address
    return found


async def moved(session: AsyncSession, account_id: str, environment: Environment) -> dict[str, str]:
    """:func:`reached_at` of every contact that changed its number or user id, by
    address (for a bulk's many recipients without a query each)."""
    rows = await session.scalars(
        select(WhatsAppContact).where(
            WhatsAppContact.account_id == account_id,
            WhatsAppContact.environment == environment.value,
        )
    )
    found: dict[str, str] = {}
    for contact in rows:
        target = reached_at(contact)
        if target is not None:
            found[contact.address] = target
    return found


async def address_of(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    identifier: str,
    *,
    extra_valid: frozenset[str],
    field: str = "id",
) -> str:
    """The conversation address for what a caller gave (a number, a user id or a
    chat id): a contact first seen by its user id keeps it as its address, even when
    addressed by the phone it showed later, and a user id whose phone is the
    address finds that phone."""
    given = contact_of(identifier, extra_valid=extra_valid, field=field)
    return await resolve(session, account_id, environment, given)
