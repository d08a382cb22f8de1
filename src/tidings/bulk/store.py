"""Writing an accepted batch: its row, its messages and their first events, the
credits, in one transaction, with the fast multi-row INSERTs of
:mod:`tidings.db.multirow`.

Messages of a batch do not fire ``message.queued`` one by one: the batch's
answer is that acknowledgment. Every later change (sent, delivered, failed...)
fires as for any message.

What the messages share (:mod:`tidings.bulk.shared`) is written once, before
them. The rows go in slices, with the event loop free between two: with the
default SQLite driver the statements run on the loop's own thread, and 100,000
rows in one go kept every other request waiting for over a second.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Table, Text
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.models import Batch, SharedContent
from tidings.bulk.planning import Plan
from tidings.bulk.shared import Shared
from tidings.core.environments import Environment
from tidings.core.errors import PaymentRequired
from tidings.core.ids import new_ids
from tidings.credits.repository import CreditRepository
from tidings.db.multirow import insert_rows
from tidings.messages.models import Message, MessageEvent
from tidings.messages.status import Status

MESSAGE_COLUMNS = ("id", "to_address", "body", "content", "segments", "encoding", "credits")

# Rows per INSERT slice: a few ms of the loop's time with the inline SQLite driver.
SLICE = 200


async def store_batch(
    session: AsyncSession,
    *,
    batch_id: str,
    account_id: str,
    environment: Environment,
    channel: str,
    name: str | None,
    sender: str | None,
    plan: Plan,
    scheduled_at: datetime | None,
    now: datetime,
    errors_json: list[dict[str, object]],
    shared_content: Shared | None = None,
) -> Batch:
    charged = environment == Environment.PRODUCTION
    cost = plan.cost if charged else Decimal(0)
    if cost > 0:
        credits = CreditRepository(session)
        if not await credits.debit(account_id, cost, at=now, batch_id=batch_id):
            balance = await credits.balance(account_id)
            raise PaymentRequired(f"This batch costs {cost} credits and the balance is {balance}.")
    later = scheduled_at is not None and scheduled_at > now
    status = Status.SCHEDULED if later else Status.QUEUED
    batch = Batch(
        id=batch_id,
        account_id=account_id,
        environment=environment.value,
        channel=channel,
        name=name,
        status="scheduled" if later else "accepted",
        total=plan.total,
        accepted=len(plan.messages),
        rejected=plan.rejected,
        duplicates=plan.duplicates,
        credits=cost,
        errors=errors_json,
        scheduled_at=scheduled_at if later else None,
        created_at=now,
    )
    session.add(batch)
    if shared_content is not None and plan.messages:
        session.add(
            SharedContent(
                id=shared_content.id,
                batch_id=batch_id,
                content=shared_content.content,
                created_at=now,
            )
        )
    await session.flush()
    # Ids for the messages the rules did not name (100,000 take a fifth of a second:
    # not on the loop's thread).
    unnamed = sum(1 for message in plan.messages if message.id is None)
    ids = await asyncio.to_thread(new_ids, "msg", len(plan.messages)) if unnamed else []
    zero = Decimal(0)
    messages = plan.messages
    shared: dict[str, Any] = {
        "account_id": account_id,
        "environment": environment.value,
        "channel": channel,
        "direction": "outbound",
        "status": status.value,
        "from_address": sender,
        "batch_id": batch_id,
        "attempts": 0,
        "next_attempt_at": scheduled_at if later else now,
        "scheduled_at": scheduled_at if later else None,
        "created_at": now,
        "updated_at": now,
    }
    table = _table(Message)
    # Content the channel's rules gave every message alike is converted once.
    common = messages[0].content if messages else None
    if messages and messages[0].content_json is not None:
        # Encoded while planning (off the loop); SQLite takes the text as it is.
        sqlite = session.get_bind().dialect.name == "sqlite"
        table = _ENCODED_MESSAGES if sqlite else table
        columns: tuple[str, ...] = MESSAGE_COLUMNS
        rows: Iterator[tuple[Any, ...]] = (
            (
                message.id or ids[index],
                message.to,
                message.body,
                message.content_json if sqlite else json.loads(message.content_json or "{}"),
                message.segments,
                message.encoding,
                message.cost if charged else zero,
            )
            for index, message in enumerate(messages)
        )
    elif all(message.content is common for message in messages):
        shared["content"] = common
        columns = tuple(c for c in MESSAGE_COLUMNS if c != "content")
        rows = (
            (
                message.id or ids[index],
                message.to,
                message.body,
                message.segments,
                message.encoding,
                message.cost if charged else zero,
            )
            for index, message in enumerate(messages)
        )
    else:
        columns = MESSAGE_COLUMNS
        rows = (
            (
                message.id or ids[index],
                message.to,
                message.body,
                message.content,
                message.segments,
                message.encoding,
                message.cost if charged else zero,
            )
            for index, message in enumerate(messages)
        )
    await _insert_in_slices(session, table, columns, rows, shared)
    await _insert_in_slices(
        session,
        _table(MessageEvent),
        ("message_id",),
        ((message.id or ids[index],) for index, message in enumerate(plan.messages)),
        {"status": status.value, "at": now, "applied": True},
    )
    return batch


def _table(model: type[Message] | type[MessageEvent]) -> Table:
    return model.__table__  # type: ignore[return-value]


def _encoded_messages() -> Table:
    """``messages`` with ``content`` taken as text: the JSON the column's own type
    would have written (``json.dumps``), encoded beforehand."""
    table = _table(Message).to_metadata(MetaData())
    table.c.content.type = Text()
    return table


_ENCODED_MESSAGES = _encoded_messages()


async def _insert_in_slices(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    shared: dict[str, Any],
) -> None:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, SLICE)):
        await insert_rows(session, table, columns, chunk, shared=shared)
        # Other requests (and /healthz) run between two slices.
        await asyncio.sleep(0)
