"""WhatsApp conversations, derived from the messages table (no table of their own).

A conversation is every WhatsApp message to (outbound, ``to_address``) or from
(inbound, ``from_address``) one contact, in one account and environment. One
grouped query gives, per contact: the newest message id (ids sort by creation
time, so it orders conversations by last activity and serves as the cursor), the
newest outbound id, the newest inbound time (for the window), and, through a
correlated count, the unread messages.

Unread rule: the contact's inbound messages newer than the account's last
outbound message to it. Replying marks a conversation read; there is no other
read marker.

The window's closing by WhatsApp is read from the same rows: the newest outbound
message that failed with ``outside_customer_service_window`` (Meta's 131047,
answered at once or in a later ``failed`` status) says when WhatsApp last found
the window closed (see :mod:`tidings.channels.whatsapp.window`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, literal_column, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tidings.core.environments import Environment
from tidings.db.base import UtcDateTime
from tidings.messages.models import Message

# Literal SQL, not bound parameters: the same CASE appears in SELECT and GROUP BY,
# which PostgreSQL matches only when the two are textually identical.
_INBOUND: ColumnElement[str] = literal_column("'inbound'")
_OUTBOUND: ColumnElement[str] = literal_column("'outbound'")
# The error of a free-form message WhatsApp refused because the window was closed.
WINDOW_CLOSED = "outside_customer_service_window"


@dataclass(frozen=True, slots=True)
class ConversationRow:
    contact: str
    last_message_id: str
    last_inbound_at: datetime | None
    unread: int
    window_closed_at: datetime | None = None


def _scope(
    model: type[Message], account_id: str, environment: Environment
) -> list[ColumnElement[bool]]:
    return [
        model.account_id == account_id,
        model.environment == environment.value,
        model.channel == "whatsapp",
    ]


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self, account_id: str, environment: Environment, *, limit: int, after: str | None
    ) -> list[ConversationRow]:
        """Newest activity first, ``limit + 1`` rows; ``after`` is the last message
        id of the previous page's final conversation."""
        contact = case(
            (Message.direction == _INBOUND, Message.from_address), else_=Message.to_address
        )
        summary = (
            select(
                contact.label("contact"),
                func.max(Message.id).label("last_id"),
                func.max(case((Message.direction == _OUTBOUND, Message.id))).label("last_out_id"),
                type_coerce(
                    func.max(case((Message.direction == _INBOUND, Message.created_at))),
                    UtcDateTime(),
                ).label("last_in_at"),
                type_coerce(
                    func.max(
                        case(
                            (
                                (Message.direction == _OUTBOUND)
                                & (Message.error_code == WINDOW_CLOSED),
                                Message.updated_at,
                            )
                        )
                    ),
                    UtcDateTime(),
                ).label("closed_at"),
            )
            .where(*_scope(Message, account_id, environment))
            .group_by(contact)
            .subquery()
        )
        later = aliased(Message)
        unread = (
            select(func.count())
            .select_from(later)
            .where(
                *_scope(later, account_id, environment),
                later.direction == "inbound",
                later.from_address == summary.c.contact,
                or_(summary.c.last_out_id.is_(None), later.id > summary.c.last_out_id),
            )
            .scalar_subquery()
        )
        query = select(
            summary.c.contact,
            summary.c.last_id,
            summary.c.last_in_at,
            unread.label("unread"),
            summary.c.closed_at,
        ).where(summary.c.contact.is_not(None))
        if after is not None:
            query = query.where(summary.c.last_id < after)
        rows = await self._session.execute(
            query.order_by(summary.c.last_id.desc()).limit(limit + 1)
        )
        return [
            ConversationRow(
                row.contact, row.last_id, row.last_in_at, int(row.unread), row.closed_at
            )
            for row in rows
        ]

    async def messages(
        self,
        account_id: str,
        environment: Environment,
        contact: str,
        *,
        limit: int,
        after: str | None,
    ) -> Sequence[Message]:
        """One conversation, both directions, newest first, ``limit + 1`` rows."""
        query = select(Message).where(
            *_scope(Message, account_id, environment),
            or_(
                (Message.direction == "outbound") & (Message.to_address == contact),
                (Message.direction == "inbound") & (Message.from_address == contact),
            ),
        )
        if after is not None:
            query = query.where(Message.id < after)
        rows = await self._session.scalars(query.order_by(Message.id.desc()).limit(limit + 1))
        return list(rows)

    async def window_closed_at(
        self, account_id: str, environment: Environment, contact: str
    ) -> datetime | None:
        """When WhatsApp last refused a free-form message to ``contact`` because the
        window was closed (None: never)."""
        return await self._session.scalar(
            select(type_coerce(func.max(Message.updated_at), UtcDateTime())).where(
                *_scope(Message, account_id, environment),
                Message.to_address == contact,
                Message.direction == "outbound",
                Message.error_code == WINDOW_CLOSED,
            )
        )

    async def windows_closed(
        self, account_id: str, environment: Environment
    ) -> dict[str, datetime]:
        """:meth:`window_closed_at` for every contact WhatsApp ever refused, in one query."""
        rows = await self._session.execute(
            select(Message.to_address, type_coerce(func.max(Message.updated_at), UtcDateTime()))
            .where(
                *_scope(Message, account_id, environment),
                Message.direction == "outbound",
                Message.error_code == WINDOW_CLOSED,
            )
            .group_by(Message.to_address)
        )
        return {address: at for address, at in rows}
