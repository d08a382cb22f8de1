"""The queue's SQL, with Core: due candidates, leases, retries, releases.

Single sends and batch messages are looked up separately: single sends first,
through their own small index, so a draining batch never stands in front of
them; batch messages then, for the capacity batches may use (see
:mod:`tidings.bulk.pacing` for which of them go now).

SQLite serialises writers, so selecting then updating in one transaction is
safe; PostgreSQL lets several workers claim at once, each skipping the rows
another has locked (``FOR UPDATE SKIP LOCKED``).

On PostgreSQL single sends are claimed by one statement outside the group
committer's transactions (:func:`claim_singles_alone`): it leases them, says
whether batch messages are due too, and is its own transaction, which commits
without waiting for its WAL flush (the statement sets ``synchronous_commit`` off
for it when it leases any). Why that keeps every promise: the claim answers
nobody and writes only the lease (``lease_owner``, ``next_attempt_at``,
``attempts``), no status, event or outbox row. If PostgreSQL crashed before that
commit reached the disk, the lease is gone and the message is due again, as when
a worker dies holding it: it is claimed and sent again (delivery is at least once
already). PostgreSQL writes its log in order, so the verdict's commit, which does
wait for its flush, makes the claim before it durable too: a claim is lost only
with its verdict, when the crash comes between the two. A claimed scheduled
message becomes ``queued`` (the status change, its event, maybe its outbox row)
in a transaction of the group committer's after the claim, which waits for its
flush like every other write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    false,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.multirow import update_rows
from tidings.messages.models import Message
from tidings.messages.rows import COLUMNS, Row

_TABLE = Message.__table__
# The claim's subquery reads the table under another name than the UPDATE's.
_DUE = Message.__table__.alias("due")
_BATCH = Message.__table__.alias("batch_due")
# set_config(..., true) is SET LOCAL: evaluated with each leased row, it needs no
# round trip of its own.
_NO_FLUSH = func.set_config("synchronous_commit", "off", True).label("commit_without_flush")


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
    postgres = session.get_bind().dialect.name == "postgresql"
    lane: ColumnElement[bool] = (
        Message.batch_id.is_not(None) if batch else Message.batch_id.is_(None)
    )
    if not batch and not postgres:
        # SQLite keeps no statistics here, so it took "batch_id IS NULL" for a selective
        # lookup in ix_messages_batch: every single send ever stored was read and sorted
        # at each claim (8 ms with 2,200 messages, and growing). Said to be true of most
        # rows, the term leaves the plan to the partial index of due single sends.
        # (The probability must be written in the SQL: SQLite refuses a parameter.)
        lane = func.likelihood(lane, literal_column("0.9"))
    query = (
        select(Message.id, Message.account_id, Message.environment, Message.channel)
        .where(
            Message.next_attempt_at.is_not(None),
            Message.next_attempt_at <= now,
            lane,
            Message.channel.in_(channels),
        )
        .order_by(Message.next_attempt_at)
        .limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return [Candidate(*row) for row in await (await session.connection()).execute(query)]


def _claim_statement(batch: bool) -> Select[Any]:
    """The claim of single sends, built once (building and keying it anew cost more
    than its round trip): its values are bound parameters, the channels an array.
    With ``batch``, it also says whether batch messages of ``batch_channels`` are due."""
    picked = (
        select(_DUE.c.id)
        .where(
            _DUE.c.next_attempt_at.is_not(None),
            _DUE.c.next_attempt_at <= bindparam("now"),
            _DUE.c.batch_id.is_(None),
            _DUE.c.channel == any_(bindparam("channels", type_=ARRAY(String))),
        )
        .order_by(_DUE.c.next_attempt_at)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    leased = (
        update(Message)
        .where(Message.id.in_(picked))
        .values(
            lease_owner=bindparam("owner"),
            next_attempt_at=bindparam("until"),
            attempts=Message.attempts + 1,
        )
        .returning(*COLUMNS, _NO_FLUSH)
        .cte("leased")
    )
    waiting: ColumnElement[bool] = false()
    if batch:
        waiting = (
            select(_BATCH.c.id)
            .where(
                _BATCH.c.next_attempt_at.is_not(None),
                _BATCH.c.next_attempt_at <= bindparam("now"),
                _BATCH.c.batch_id.is_not(None),
                _BATCH.c.channel == any_(bindparam("batch_channels", type_=ARRAY(String))),
            )
            .exists()
        )
    # One row at least (the flag), joined to each leased row.
    flag = select(waiting.label("batch_waiting")).subquery("waiting")
    query = select(
        *(leased.c[column.key] for column in COLUMNS),
        leased.c.commit_without_flush,
        flag.c.batch_waiting,
    )
    return query.select_from(flag.outerjoin(leased, true()))


_CLAIM = _claim_statement(batch=False)
_CLAIM_WITH_BATCH = _claim_statement(batch=True)


async def claim_singles(
    session: AsyncSession,
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    owner: str,
    until: datetime,
    batch_channels: Sequence[str] = (),
    batch_room: int = 0,
) -> tuple[list[Row], bool]:
    """PostgreSQL: lease up to ``limit`` due single sends and return them as they
    now are, with whether batch messages are due too (when ``batch_room``), in one
    statement (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
    RETURNING``, beside an ``EXISTS``). When it leases any, its transaction then
    commits without waiting for its flush (see the module's note)."""
    if limit <= 0 or not channels:
        return [], False
    batch = batch_room > 0 and bool(batch_channels)
    values: dict[str, Any] = {
        "now": now,
        "channels": list(channels),
        "limit": limit,
        "owner": owner,
        "until": until,
    }
    if batch:
        values["batch_channels"] = list(batch_channels)
    result = await (await session.connection()).execute(
        _CLAIM_WITH_BATCH if batch else _CLAIM, values
    )
    rows: list[Row] = []
    batch_waiting = False
    for found in result:
        row = dict(found._mapping)
        batch_waiting = bool(row.pop("batch_waiting"))
        del row["commit_without_flush"]
        if row["id"] is not None:
            rows.append(row)
    return rows, batch_waiting


async def claim_singles_alone(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    owner: str,
    until: datetime,
    batch_channels: Sequence[str],
    batch_room: int,
) -> tuple[list[Row], bool]:
    """:func:`claim_singles` as a transaction of its own: the one statement outside
    ``BEGIN``/``COMMIT`` (PostgreSQL commits it as it ends), a single round trip."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return await claim_singles(
            session,
            now=now,
            channels=channels,
            limit=limit,
            owner=owner,
            until=until,
            batch_channels=batch_channels,
            batch_room=batch_room,
        )


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
