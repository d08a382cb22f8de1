"""SQL for messages: reading, listing, the window lookup, and claiming due rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.messages.models import Message, MessageEvent


@dataclass(frozen=True, slots=True)
class MessageFilters:
    channel: str | None = None
    status: str | None = None
    direction: str | None = None
    to: str | None = None
    batch_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


# Built once, the ids passed as one expanding parameter: building the IN list
# anew costs more than the query on the receipts' hot path.
_SEEN_STATUSES = select(MessageEvent.message_id, MessageEvent.status, MessageEvent.kind).where(
    MessageEvent.message_id.in_(bindparam("ids", expanding=True))
)


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(
        self, account_id: str, environment: Environment, message_id: str
    ) -> Message | None:
        return await self._session.scalar(
            select(Message).where(
                Message.id == message_id,
                Message.account_id == account_id,
                Message.environment == environment.value,
            )
        )

    async def get_by_id(self, message_id: str) -> Message | None:
        return await self._session.get(Message, message_id)

    async def events(self, message_id: str) -> list[MessageEvent]:
        rows = await self._session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        )
        return list(rows)

    async def seen_statuses(self, message_ids: Sequence[str]) -> dict[str, set[str]]:
        """Per message, the statuses reported and the kinds of other events recorded."""
        found: dict[str, set[str]] = {message_id: set() for message_id in message_ids}
        if not message_ids:
            return found
        rows = await (await self._session.connection()).execute(
            _SEEN_STATUSES, {"ids": list(message_ids)}
        )
        for message_id, status, kind in rows:
            found[message_id].add(kind or status)
        return found

    async def page(
        self,
        account_id: str,
        environment: Environment,
        filters: MessageFilters,
        *,
        limit: int,
        after: str | None,
    ) -> list[Message]:
        query = select(Message).where(
            Message.account_id == account_id, Message.environment == environment.value
        )
        if filters.channel:
            query = query.where(Message.channel == filters.channel)
        if filters.status:
            query = query.where(Message.status == filters.status)
        if filters.direction:
            query = query.where(Message.direction == filters.direction)
        if filters.to:
            query = query.where(Message.to_address == filters.to)
        if filters.batch_id:
            query = query.where(Message.batch_id == filters.batch_id)
        if filters.since:
            query = query.where(Message.created_at >= filters.since)
        if filters.until:
            query = query.where(Message.created_at < filters.until)
        if after:
            query = query.where(Message.id < after)
        query = query.order_by(Message.id.desc()).limit(limit + 1)
        return list(await self._session.scalars(query))

    async def last_inbound_at(
        self, account_id: str, environment: Environment, channel: str, contact: str
    ) -> datetime | None:
        return await self._session.scalar(
            select(func.max(Message.created_at)).where(
                Message.account_id == account_id,
                Message.environment == environment.value,
                Message.channel == channel,
                Message.direction == "inbound",
                Message.from_address == contact,
            )
        )

    async def last_inbound_by_contact(
        self, account_id: str, environment: Environment, channel: str
    ) -> dict[str, datetime]:
        """:meth:`last_inbound_at` for every contact, in one query."""
        rows = await self._session.execute(
            select(Message.from_address, func.max(Message.created_at))
            .where(
                Message.account_id == account_id,
                Message.environment == environment.value,
                Message.channel == channel,
                Message.direction == "inbound",
            )
            .group_by(Message.from_address)
        )
        return {contact: at for contact, at in rows if contact is not None}

    async def get_many(self, message_ids: Sequence[str]) -> list[Message]:
        if not message_ids:
            return []
        rows = await self._session.scalars(select(Message).where(Message.id.in_(message_ids)))
        return list(rows)

    async def release(self, owner: str, message_ids: Sequence[str], now: datetime) -> None:
        """Give back leases not used (clean shutdown): due again at once."""
        if not message_ids:
            return
        await self._session.execute(
            update(Message)
            .where(Message.id.in_(message_ids), Message.lease_owner.startswith(owner + ":"))
            .values(lease_owner=None, next_attempt_at=now, attempts=Message.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    async def take_out_of_queue(self, message_id: str) -> bool:
        """Remove a not-yet-submitted message from the queue (to cancel it)."""
        result = await self._session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.lease_owner.is_(None),
                Message.status.in_(["scheduled", "queued"]),
            )
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1
