"""The queue's SQL, with Core: due candidates, leases, retries, releases.

Single sends and batch messages are looked up separately: single sends first,
through their own small index, so a draining batch never stands in front of
them; batch messages then, for the capacity batches may use (see
:mod:`tidings.bulk.pacing` for which of them go now).

SQLite serialises writers, so selecting then updating in one transaction is
safe; PostgreSQL lets several workers claim at once, each skipping the rows
another has locked (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.multirow import update_rows
from tidings.messages.models import Message
from tidings.messages.rows import COLUMNS, Row

_TABLE = Message.__table__


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    account_id: str
    environment: str
    channel: str


async def due(
    session: AsyncSession,
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    batch: bool,
) -> list[Candidate]:
    if limit <= 0 or not channels:
        return []
    query = (
        select(Message.id, Message.account_id, Message.environment, Message.channel)
        .where(
            Message.next_attempt_at.is_not(None),
            Message.next_attempt_at <= now,
            Message.batch_id.is_not(None) if batch else Message.batch_id.is_(None),
            Message.channel.in_(channels),
        )
        .order_by(Message.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [Candidate(*row) for row in await (await session.connection()).execute(query)]


async def lease(
    session: AsyncSession, ids: Sequence[str], *, owner: str, until: datetime
) -> list[Row]:
    """Lease the rows (attempts counted) and return them as they now are."""
    if not ids:
        return []
    leased: list[Row] = []
    for start in range(0, len(ids), 500):
        result = await (await session.connection()).execute(
            update(Message)
            .where(Message.id.in_(ids[start : start + 500]))
            .values(lease_owner=owner, next_attempt_at=until, attempts=Message.attempts + 1)
            .returning(*COLUMNS)
            .execution_options(synchronize_session=False)
        )
        leased.extend(dict(row._mapping) for row in result)
    return leased


async def requeue(session: AsyncSession, retries: Sequence[dict[str, Any]]) -> None:
    """Put messages back in the queue for a later attempt: ``id``, ``next_attempt_at``,
    ``attempts``, ``provider_id``, ``error_code``, ``error_message``, ``updated_at`` each."""
    if not retries:
        return
    columns = (
        "next_attempt_at",
        "attempts",
        "provider_id",
        "error_code",
        "error_message",
        "updated_at",
    )
    await update_rows(
        session,
        _TABLE,  # type: ignore[arg-type]
        (*columns, "lease_owner"),
        [(*(retry[name] for name in columns), None, retry["id"]) for retry in retries],
    )
