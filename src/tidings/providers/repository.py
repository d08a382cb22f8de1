"""The only SQL of the provider seam: providers, their refs, and the inbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import takewhile
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.db.driver import autoflushed, sqlite_driver
from tidings.db.multirow import (
    insert_rows,
    placeholders,
    result_plan,
    select_in,
    select_rows,
    utc_param,
)
from tidings.messages.models import Message
from tidings.messages.status import FINAL
from tidings.providers.base import RawReport
from tidings.providers.models import InboxEvent, ProviderRefRow, ProviderRow

# Receipts come within days or not at all (an SMS validity is at most a few days).
IN_FLIGHT_HORIZON = timedelta(days=3)

_REF_TABLE: Table = ProviderRefRow.__table__  # type: ignore[assignment]
# A ref's values in this order are a row of RefRepository.add_values.
REF_COLUMNS = ("provider_id", "external_id", "message_id", "part", "recipient", "created_at")
_REF_COLUMNS = REF_COLUMNS
_ref_values = itemgetter(*_REF_COLUMNS)
_REF_SELECTED = ("external_id", "message_id", "part")
_REFS = select(_REF_TABLE.c.external_id, _REF_TABLE.c.message_id, _REF_TABLE.c.part).where(
    _REF_TABLE.c.provider_id == bindparam("provider"),
    _REF_TABLE.c.external_id.in_(bindparam("ids", expanding=True)),
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
        if await sqlite_driver(self._session) is not None:
            await self.add_values([_ref_values(row) for row in rows])
            return
        # Core on the table, on the connection: the ORM's bulk insert cost more than
        # the rows.
        statement = _insert(self._session)(_REF_TABLE).on_conflict_do_nothing()
        await (await self._session.connection()).execute(statement, list(rows))

    async def add_values(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """:meth:`add` for rows given as tuples in ``REF_COLUMNS`` order."""
        if not rows:
            return
        if await sqlite_driver(self._session) is None:
            await self.add([dict(zip(REF_COLUMNS, row, strict=True)) for row in rows])
            return
        # SQLite: straight to the driver (Core converted every value of every row).
        await insert_rows(self._session, _REF_TABLE, _REF_COLUMNS, rows, ignore_conflicts=())

    async def refs(
        self, provider_id: str, external_ids: Sequence[str]
    ) -> dict[str, tuple[str, int | None]]:
        """external id -> (message id, part), for the ids that are known."""
        found: dict[str, tuple[str, int | None]] = {}
        ids = sorted(set(external_ids))
        driver = await sqlite_driver(self._session)
        if driver is not None:
            # SQLite: on the driver (ids, parts: nothing to convert).
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                sql, _ = select_in(
                    _REF_TABLE,
                    _REF_SELECTED,
                    driver[1],
                    "external_id",
                    len(chunk),
                    equal=("provider_id",),
                )
                cursor = await driver[0].execute(sql, [provider_id, *chunk])
                for external_id, message_id, part in await cursor.fetchall():
                    found[external_id] = (message_id, part)
            return found
        connection = await self._session.connection()
        for start in range(0, len(ids), 500):
            result = await connection.execute(
                _REFS, {"provider": provider_id, "ids": ids[start : start + 500]}
            )
            found.update(
                {external_id: (message_id, part) for external_id, message_id, part in result}
            )
        return found

    async def part_counts(self, provider_id: str, message_ids: Sequence[str]) -> dict[str, int]:
        """How many parts each message has with this provider (messages sent whole
        have none)."""
        if not message_ids:
            return {}
        rows = await self._session.execute(
            select(ProviderRefRow.message_id, func.count())
            .where(
                ProviderRefRow.provider_id == provider_id,
                ProviderRefRow.message_id.in_(sorted(set(message_ids))),
                ProviderRefRow.part.is_not(None),
            )
            .group_by(ProviderRefRow.message_id)
        )
        return {message_id: int(count) for message_id, count in rows}


_INBOX: Table = InboxEvent.__table__  # type: ignore[assignment]
_PENDING_COLUMNS = (
    _INBOX.c.id,
    _INBOX.c.provider_id,
    _INBOX.c.payload,
    _INBOX.c.attempts,
    _INBOX.c.received_at,
)
_FINISH = (
    update(_INBOX)
    .where(_INBOX.c.id == bindparam("report_id"))
    .values(
        state=bindparam("new_state"),
        attempts=bindparam("new_attempts"),
        due_at=func.coalesce(bindparam("new_due", type_=_INBOX.c.due_at.type), _INBOX.c.due_at),
        error=bindparam("new_error"),
    )
)


# An inbox row's values in this order are a row of InboxRepository.store_values.
INBOX_COLUMNS = _INBOX_COLUMNS = (
    "provider_id",
    "dedupe_key",
    "payload",
    "state",
    "attempts",
    "received_at",
    "due_at",
    "error",
)
_inbox_values = itemgetter(*_INBOX_COLUMNS)
_PENDING_KEYS = tuple(column.key for column in _PENDING_COLUMNS)


@lru_cache(maxsize=4)
def _sqlite_due(dialect: Dialect) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """SQLite: :meth:`InboxRepository.due`'s query as SQL text, and what to convert."""
    quote = dialect.identifier_preparer.quote
    # Names come from the table's metadata, never from a request.
    sql = (
        f"SELECT {', '.join(quote(key) for key in _PENDING_KEYS)} "  # noqa: S608
        f"FROM {quote(_INBOX.name)} WHERE {quote('state')} = 'pending' "
        f"AND {quote('due_at')} <= ? ORDER BY {quote('due_at')}, {quote('id')} LIMIT ?"
    )
    return sql, result_plan(_INBOX, _PENDING_KEYS, dialect)


@lru_cache(maxsize=64)
def _sqlite_done(dialect: Dialect, count: int) -> str:
    """SQLite: ``count`` applied reports marked done."""
    quote = dialect.identifier_preparer.quote
    return (
        f"UPDATE {quote(_INBOX.name)} SET {quote('state')} = 'done' "  # noqa: S608
        f"WHERE {quote('id')} IN ({placeholders(count)})"
    )


@dataclass(slots=True)
class PendingReport:
    """A stored report being applied: what the processor reads and decides."""

    id: int
    provider_id: str
    payload: dict[str, Any]
    attempts: int
    received_at: datetime
    state: str = "pending"
    due_at: datetime | None = None
    error: str | None = None


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def store(self, rows: Sequence[dict[str, Any]], *, counted: bool = True) -> int:
        """Insert raw reports; a repeat of a stored (provider, key) is ignored. How
        many were new (0 when not ``counted``: then nothing is read back)."""
        if not rows:
            return 0
        if not counted and await sqlite_driver(self._session) is not None:
            await self.store_values([_inbox_values(row) for row in rows])
            return 0
        if not counted:
            await self._session.execute(
                _insert(self._session)(_INBOX).on_conflict_do_nothing(
                    index_elements=["provider_id", "dedupe_key"]
                ),
                list(rows),
            )
            return 0
        # Counted by the ids it returns (Core, not the ORM's bulk insert: cheaper, and
        # an executemany reports no rowcount).
        statement = (
            _insert(self._session)(_INBOX)
            .on_conflict_do_nothing(index_elements=["provider_id", "dedupe_key"])
            .returning(_INBOX.c.id)
        )
        result = await self._session.execute(statement, list(rows))
        return len(result.all())

    async def store_values(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """``store(..., counted=False)`` for rows given as tuples in ``INBOX_COLUMNS``
        order (:func:`inbox_values`)."""
        if not rows:
            return
        if await sqlite_driver(self._session) is None:
            await self.store(
                [dict(zip(INBOX_COLUMNS, row, strict=True)) for row in rows], counted=False
            )
            return
        await autoflushed(self._session)
        await insert_rows(
            self._session,
            _INBOX,
            _INBOX_COLUMNS,
            rows,
            ignore_conflicts=("provider_id", "dedupe_key"),
        )

    async def due(self, now: datetime, limit: int) -> list[PendingReport]:
        """Due reports, as plain values (applying thousands a second, the ORM's
        bookkeeping would cost more than the work)."""
        driver = await sqlite_driver(self._session)
        if driver is not None:
            # SQLite: on the driver, the payloads and times converted as Core would.
            await autoflushed(self._session)
            sql, converting = _sqlite_due(driver[1])
            rows = await select_rows(self._session, sql, (utc_param(now), limit), converting)
            return [PendingReport(*row) for row in rows]
        query = (
            select(*_PENDING_COLUMNS)
            .where(_INBOX.c.state == "pending", _INBOX.c.due_at <= now)
            .order_by(_INBOX.c.due_at, _INBOX.c.id)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [PendingReport(*row) for row in await self._session.execute(query)]

    async def one(self, report_id: int) -> PendingReport | None:
        query = select(*_PENDING_COLUMNS).where(
            _INBOX.c.id == report_id, _INBOX.c.state == "pending"
        )
        row = (await self._session.execute(query)).first()
        return None if row is None else PendingReport(*row)

    async def finish(self, reports: Sequence[PendingReport]) -> None:
        """Write back what applying the reports decided: done ones in one statement,
        the others (waiting again, unmatched, parked) one row each."""
        done = [report.id for report in reports if report.state == "done"]
        driver = await sqlite_driver(self._session)
        if driver is not None:
            await autoflushed(self._session)
        for start in range(0, len(done), 500):
            chunk = done[start : start + 500]
            if driver is not None:
                await driver[0].execute(_sqlite_done(driver[1], len(chunk)), chunk)
                continue
            await self._session.execute(
                update(_INBOX)
                .where(_INBOX.c.id.in_(done[start : start + 500]))
                .values(state="done")
            )
        others = [
            {
                "report_id": report.id,
                "new_state": report.state,
                "new_attempts": report.attempts,
                "new_due": report.due_at,
                "new_error": report.error,
            }
            for report in reports
            if report.state != "done"
        ]
        if others:
            await self._session.execute(_FINISH, others)

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

    async def purge_done(self, before: datetime, *, after_id: int, limit: int) -> PurgeStep:
        """Delete the reports applied (``done``) and received before ``before``, among
        the ``limit`` that follow ``after_id`` in the order they were stored. Ids grow
        with arrival, so the walk stops at the first report received since: one step
        reads and deletes at most ``limit`` rows, through the primary key (there is no
        index on ``received_at`` to scan)."""
        query = (
            select(InboxEvent.id, InboxEvent.received_at)
            .where(InboxEvent.id > after_id)
            .order_by(InboxEvent.id)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        old = list(takewhile(lambda row: row.received_at < before, rows))
        if not old:
            return PurgeStep(0, after_id, more=False)
        last = old[-1].id
        result = await self._session.execute(
            delete(InboxEvent).where(
                InboxEvent.id > after_id,
                InboxEvent.id <= last,
                InboxEvent.state == "done",
                InboxEvent.received_at < before,
            )
        )
        deleted = max(int(getattr(result, "rowcount", 0) or 0), 0)
        return PurgeStep(deleted, last, more=len(old) == limit)


@dataclass(frozen=True, slots=True)
class PurgeStep:
    """One step of :meth:`InboxRepository.purge_done`: how many it deleted, the id to
    go on after, and whether more old reports may follow."""

    deleted: int
    last_id: int
    more: bool


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


def inbox_values(reports: Iterable[tuple[str, RawReport]], now: datetime) -> list[tuple[Any, ...]]:
    """:func:`inbox_rows` for reports of several providers (``(provider id, report)``
    each), as tuples in ``INBOX_COLUMNS`` order. Reports due after the same delay share
    one due time (the statement converts a time once for the rows that hold it)."""
    due: dict[float, datetime] = {}
    values = []
    for provider_id, report in reports:
        delay = report.due_in_seconds
        due_at = due.get(delay)
        if due_at is None:
            due_at = due[delay] = now + timedelta(seconds=delay)
        values.append(
            (provider_id, report.dedupe_key[:191], report.payload, "pending", 0, now, due_at, None)
        )
    return values


def retry_at(now: datetime, attempts: int) -> datetime:
    """When an unmatched report is tried again: 50 ms doubling to 10 s."""
    return now + timedelta(seconds=min(0.05 * 2 ** max(attempts - 1, 0), 10.0))
