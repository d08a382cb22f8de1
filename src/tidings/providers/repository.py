"""The only SQL of the provider seam: providers, their refs, and the inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.messages.models import Message
from tidings.messages.status import FINAL
from tidings.providers.base import RawReport
from tidings.providers.models import InboxEvent, ProviderRefRow, ProviderRow

# Receipts come within days or not at all (an SMS validity is at most a few days).
IN_FLIGHT_HORIZON = timedelta(days=3)

_REFS = select(ProviderRefRow.external_id, ProviderRefRow.message_id).where(
    ProviderRefRow.provider_id == bindparam("provider"),
    ProviderRefRow.external_id.in_(bindparam("ids", expanding=True)),
)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class ProviderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(
        self, provider_id: str, account_id: str, environment: Environment
    ) -> ProviderRow | None:
        row = await self._session.get(ProviderRow, provider_id)
        if (
            row is None
            or row.account_id != account_id
            or row.environment != environment.value
            or row.deleted_at is not None
        ):
            return None
        return row

    async def by_id(self, provider_id: str) -> ProviderRow | None:
        return await self._session.get(ProviderRow, provider_id)

    async def page(
        self, account_id: str, environment: Environment, *, after: str | None, limit: int
    ) -> list[ProviderRow]:
        query = (
            select(ProviderRow)
            .where(
                ProviderRow.account_id == account_id,
                ProviderRow.environment == environment.value,
                ProviderRow.deleted_at.is_(None),
            )
            .order_by(ProviderRow.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(ProviderRow.id > after)
        return list(await self._session.scalars(query))

    async def routes(self, account_id: str, environment: str, channel: str) -> list[ProviderRow]:
        """The enabled providers of a channel, in the order they are tried."""
        query = (
            select(ProviderRow)
            .where(
                ProviderRow.account_id == account_id,
                ProviderRow.environment == environment,
                ProviderRow.channel == channel,
                ProviderRow.enabled.is_(True),
                ProviderRow.deleted_at.is_(None),
            )
            .order_by(ProviderRow.priority, ProviderRow.created_at, ProviderRow.id)
        )
        return list(await self._session.scalars(query))

    async def every(self) -> list[ProviderRow]:
        return list(await self._session.scalars(select(ProviderRow).order_by(ProviderRow.id)))

    def add(self, row: ProviderRow) -> None:
        self._session.add(row)

    async def in_flight(self, provider_id: str, now: datetime) -> int:
        """Messages this provider took that are not final yet (and may still be: a
        message quiet for longer than ``IN_FLIGHT_HORIZON`` will hear nothing more)."""
        count = await self._session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.provider_id == provider_id,
                Message.status.not_in([status.value for status in FINAL]),
                Message.updated_at > now - IN_FLIGHT_HORIZON,
            )
        )
        return int(count or 0)

    async def remove(self, row: ProviderRow) -> None:
        await self._session.delete(row)

    async def set_health(
        self, provider_id: str, health: str, error: dict[str, Any] | None, at: datetime
    ) -> None:
        await self._session.execute(
            update(ProviderRow)
            .where(ProviderRow.id == provider_id)
            .values(health=health, last_error=error)
        )

    async def purge_deleted(self, now: datetime) -> int:
        """Remove deleted providers whose messages are all final."""
        removed = 0
        query = select(ProviderRow).where(ProviderRow.deleted_at.is_not(None))
        for row in list(await self._session.scalars(query)):
            if await self.in_flight(row.id, now) == 0:
                await self._session.delete(row)
                removed += 1
        return removed


class RefRepository:
    """Which message each id a provider gave belongs to."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        # A repeated id (a late verdict recorded twice) keeps its first owner.
        statement = _insert(self._session)(ProviderRefRow).on_conflict_do_nothing()
        await self._session.execute(statement, list(rows))

    async def messages_of(self, provider_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        """external id -> message id, for the ids that are known."""
        found: dict[str, str] = {}
        ids = sorted(set(external_ids))
        for start in range(0, len(ids), 500):
            result = await self._session.execute(
                _REFS, {"provider": provider_id, "ids": ids[start : start + 500]}
            )
            found.update({external_id: message_id for external_id, message_id in result})
        return found

    async def parts_of(
        self, provider_id: str, external_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """For ids that are parts of a message in several parts: external id ->
        (this part, how many parts the message has with this provider)."""
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        refs = await self._session.execute(
            select(
                ProviderRefRow.external_id, ProviderRefRow.message_id, ProviderRefRow.part
            ).where(
                ProviderRefRow.provider_id == provider_id,
                ProviderRefRow.external_id.in_(ids),
                ProviderRefRow.part.is_not(None),
            )
        )
        found = {
            external_id: (message_id, int(part or 0)) for external_id, message_id, part in refs
        }
        if not found:
            return {}
        totals = dict(
            (
                await self._session.execute(
                    select(ProviderRefRow.message_id, func.count())
                    .where(
                        ProviderRefRow.provider_id == provider_id,
                        ProviderRefRow.message_id.in_(
                            sorted({message_id for message_id, _ in found.values()})
                        ),
                        ProviderRefRow.part.is_not(None),
                    )
                    .group_by(ProviderRefRow.message_id)
                )
            ).all()
        )
        return {
            external_id: (part, int(totals[message_id]))
            for external_id, (message_id, part) in found.items()
            if totals.get(message_id, 0) > 1
        }


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def store(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert raw reports; a repeat of a stored (provider, key) is ignored."""
        if not rows:
            return 0
        # Counted by the ids it returns: an ORM bulk insert reports no rowcount.
        statement = (
            _insert(self._session)(InboxEvent)
            .on_conflict_do_nothing(index_elements=["provider_id", "dedupe_key"])
            .returning(InboxEvent.id)
        )
        result = await self._session.execute(statement, list(rows))
        return len(result.all())

    async def due(self, now: datetime, limit: int) -> list[InboxEvent]:
        query = (
            select(InboxEvent)
            .where(InboxEvent.state == "pending", InboxEvent.due_at <= now)
            .order_by(InboxEvent.due_at, InboxEvent.id)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(await self._session.scalars(query))

    async def next_due(self) -> datetime | None:
        return await self._session.scalar(
            select(func.min(InboxEvent.due_at)).where(InboxEvent.state == "pending")
        )

    async def unmatched(
        self, provider_id: str, *, after: int | None, limit: int
    ) -> list[InboxEvent]:
        query = (
            select(InboxEvent)
            .where(
                InboxEvent.provider_id == provider_id, InboxEvent.state.in_(("unmatched", "parked"))
            )
            .order_by(InboxEvent.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(InboxEvent.id > after)
        return list(await self._session.scalars(query))

    async def purge_done(self, before: datetime) -> int:
        result = await self._session.execute(
            delete(InboxEvent).where(InboxEvent.state == "done", InboxEvent.received_at < before)
        )
        return max(int(getattr(result, "rowcount", 0) or 0), 0)


async def failing_providers(session: AsyncSession) -> list[dict[str, Any]]:
    """Enabled providers whose health is ``failing``, with why (for ``/readyz``)."""
    rows = await session.execute(
        select(ProviderRow.id, ProviderRow.kind, ProviderRow.last_error).where(
            ProviderRow.health == "failing",
            ProviderRow.enabled.is_(True),
            ProviderRow.deleted_at.is_(None),
        )
    )
    return [
        {"id": provider_id, "kind": kind, "error": (error or {}).get("code")}
        for provider_id, kind, error in rows
    ]


def inbox_rows(
    provider_id: str, reports: Sequence[RawReport], now: datetime
) -> list[dict[str, Any]]:
    """Inbox rows for raw reports received now (each due when it says)."""
    return [
        {
            "provider_id": provider_id,
            "dedupe_key": report.dedupe_key[:191],
            "payload": report.payload,
            "state": "pending",
            "attempts": 0,
            "received_at": now,
            "due_at": now + timedelta(seconds=report.due_in_seconds),
            "error": None,
        }
        for report in reports
    ]


def retry_at(now: datetime, attempts: int) -> datetime:
    """When an unmatched report is tried again: 50 ms doubling to 10 s."""
    return now + timedelta(seconds=min(0.05 * 2 ** max(attempts - 1, 0), 10.0))
