"""The queue's SQL, with Core: due candidates, leases, retries, releases.

Single sends and batch messages are looked up separately: single sends first,
through their own small index, so a draining batch never stands in front of
them; batch messages then, for the capacity batches may use (see
:mod:`tidings.bulk.pacing` for which of them go now).

SQLite serialises writers, so selecting then updating in one transaction is
safe; PostgreSQL lets several workers claim at once, each skipping the rows
another has locked (``FOR UPDATE SKIP LOCKED``).

On PostgreSQL a claim is a transaction of its own (:func:`in_own_transaction`),
not one of the group committer's: single sends are leased by one statement
(:func:`claim_singles`), and a claim that only took leases commits without
waiting for its WAL flush (that statement also sets ``synchronous_commit`` off
for its transaction; a claim that then changes a status sets it back on with
:func:`flush_on_commit`). Why that keeps every promise: the claim answers nobody
and, when it changes no status, writes no event and no outbox row, only the
lease (``lease_owner``, ``next_attempt_at``, ``attempts``). If PostgreSQL crashed
before that commit reached the disk, the lease is gone and the message is due
again, as when a worker dies holding it: it is claimed and sent again (delivery
is at least once already). PostgreSQL writes its log in order, so the verdict's
commit, which does wait for its flush, makes the claim before it durable too: a
claim is lost only with its verdict, when the crash comes between the two. A
claim that moves a scheduled message to ``queued`` (a status change, its event,
maybe its outbox row) waits for its flush like every other write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.multirow import update_rows
from tidings.messages.models import Message
from tidings.messages.rows import COLUMNS, Row

_TABLE = Message.__table__
# The claim's subquery reads the table under another name than the UPDATE's.
_DUE = Message.__table__.alias("due")
_FLUSH = text("SET LOCAL synchronous_commit TO on")
# set_config(..., true) is SET LOCAL: evaluated with each leased row, it needs no
# round trip of its own.
_NO_FLUSH = func.set_config("synchronous_commit", "off", True).label("commit_without_flush")

T = TypeVar("T")


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


async def claim_singles(
    session: AsyncSession,
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    owner: str,
    until: datetime,
) -> list[Row]:
    """PostgreSQL: lease up to ``limit`` due single sends and return them as they
    now are, in one statement (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
    LOCKED) RETURNING``): one round trip where selecting then leasing takes two.
    When it leases any, the transaction then commits without waiting for its flush
    (see the module's note), unless :func:`flush_on_commit` follows."""
    if limit <= 0 or not channels:
        return []
    picked = (
        select(_DUE.c.id)
        .where(
            _DUE.c.next_attempt_at.is_not(None),
            _DUE.c.next_attempt_at <= now,
            _DUE.c.batch_id.is_(None),
            _DUE.c.channel.in_(channels),
        )
        .order_by(_DUE.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await (await session.connection()).execute(
        update(Message)
        .where(Message.id.in_(picked))
        .values(lease_owner=owner, next_attempt_at=until, attempts=Message.attempts + 1)
        .returning(*COLUMNS, _NO_FLUSH)
        .execution_options(synchronize_session=False)
    )
    rows = [dict(row._mapping) for row in result]
    for row in rows:
        del row["commit_without_flush"]
    return rows


async def flush_on_commit(session: AsyncSession) -> None:
    """PostgreSQL: this claim's commit waits for its flush after all (it changes a
    status: a scheduled message becomes queued, with its event)."""
    await session.execute(_FLUSH)


async def in_own_transaction(
    sessions: async_sessionmaker[AsyncSession], unit: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run ``unit`` in a transaction of its own and commit it (a claim on PostgreSQL,
    where claims need not queue behind the group committer's other writes)."""
    async with sessions() as session:
        result = await unit(session)
        await session.commit()
    return result


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
