"""The receipt timeout sweep: a message asked for a delivery receipt that never came
says so.

A provider kind that asks its network for receipts (``smpp`` with
``registeredDelivery``) names, in its config, how long a receipt may take
(``KindSpec.receipt_timeout``; ``receiptTimeoutSeconds``, 48 h by default). A
message of such a provider still ``sent`` that long after it became ``sent`` gets,
in one transaction:

- an event ``{"status": "sent", "applied": false, "event": "receipt_timeout"}``
  (the detail names the timeout and the provider);
- ``error`` ``{"code": "receipt_timeout", "message": ...}``, and ``updatedAt`` now.

Its status stays ``sent``: the network took the message and may have delivered it
(as Twilio leaves such a message ``sent``); a receipt that comes later still moves
it, and clears the error. No webhook is sent for it (the spec's event types have
none); the message and its SMS report show it.

The sweep reads the database, not timers kept in memory: a restart, or a receipt
lost while no process ran, changes nothing. It runs wherever dispatchers run,
under their supervisor; each provider is looked at every quarter of its timeout
(at most every minute). On PostgreSQL several processes may sweep at once: the
messages one marks are locked (``FOR UPDATE SKIP LOCKED``) and the others pass
them, and a message already marked is never marked again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.db.group_commit import GroupCommitter
from tidings.messages.models import Message, MessageEvent
from tidings.messages.status import Status
from tidings.providers.models import ProviderRow
from tidings.providers.registry import KindRegistry

log = logging.getLogger("tidings.receipt_timeouts")

RECEIPT_TIMEOUT = "receipt_timeout"
# How often the providers are read (which of them await receipts, and for how long).
TICK_SECONDS = 1.0
# A provider is swept every quarter of its timeout, but at least this often.
MAX_INTERVAL_SECONDS = 60.0
# Messages marked per transaction.
BATCH = 500


def describe(seconds: float) -> str:
    """A timeout as people say it: ``48 h``, ``90 min``, ``2 s``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


async def awaiting_receipts(
    sessions: async_sessionmaker[AsyncSession], kinds: KindRegistry
) -> dict[str, float]:
    """Provider id -> its receipt timeout, for the providers that ask for receipts
    (deleted ones too: their messages in flight still wait)."""
    async with sessions() as session:
        rows = (
            await session.execute(select(ProviderRow.id, ProviderRow.kind, ProviderRow.config))
        ).all()
    found: dict[str, float] = {}
    for provider_id, kind, config in rows:
        spec = kinds.get(kind)
        if spec is None:
            continue
        seconds = spec.receipt_timeout(dict(config or {}))
        if seconds is not None:
            found[provider_id] = seconds
    return found


async def mark_overdue(
    session: AsyncSession, provider_id: str, seconds: float, now: datetime, limit: int = BATCH
) -> int:
    """Mark up to ``limit`` of this provider's messages still ``sent`` since before
    ``now - seconds`` and not marked yet; how many were marked."""
    marked = exists().where(
        MessageEvent.message_id == Message.id, MessageEvent.kind == RECEIPT_TIMEOUT
    )
    overdue = (
        select(Message.id)
        .where(
            Message.provider_id == provider_id,
            Message.status == Status.SENT.value,
            Message.updated_at <= now - timedelta(seconds=seconds),
            ~marked,
        )
        .order_by(Message.updated_at)
        .limit(limit)
        # PostgreSQL: another process sweeping now passes these (SQLite ignores it).
        .with_for_update(skip_locked=True, of=Message)
    )
    ids = list(await session.scalars(overdue))
    if not ids:
        return 0
    said = (
        f"No delivery receipt within {describe(seconds)} of the provider taking the "
        "message; it may still have been delivered, and a late receipt still counts."
    )
    await session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == Status.SENT.value)
        .values(error_code=RECEIPT_TIMEOUT, error_message=said, updated_at=now)
    )
    detail = {"afterSeconds": seconds, "providerId": provider_id}
    await session.execute(
        insert(MessageEvent),
        [
            {
                "message_id": message_id,
                "status": Status.SENT.value,
                "at": now,
                "applied": False,
                "kind": RECEIPT_TIMEOUT,
                "detail": detail,
            }
            for message_id in ids
        ],
    )
    return len(ids)


async def sweep_provider(
    writer: GroupCommitter, clock: Clock, provider_id: str, seconds: float
) -> int:
    """Mark every overdue message of one provider, a batch per transaction."""
    total = 0
    while True:
        now = clock.now()

        async def unit(session: AsyncSession, now: datetime = now) -> int:
            return await mark_overdue(session, provider_id, seconds, now)

        marked = await writer.submit(unit)
        total += marked
        if marked < BATCH:
            return total


async def run_receipt_timeouts(
    writer: GroupCommitter,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    kinds: KindRegistry,
) -> None:
    due: dict[str, float] = {}
    while True:
        try:
            timeouts = await awaiting_receipts(sessions, kinds)
            for provider_id, timeout in timeouts.items():
                if due.get(provider_id, 0.0) > time.monotonic():
                    continue
                due[provider_id] = time.monotonic() + min(timeout / 4, MAX_INTERVAL_SECONDS)
                marked = await sweep_provider(writer, clock, provider_id, timeout)
                if marked:
                    log.info(
                        "%d message(s) of provider %s had no receipt within %s",
                        marked,
                        provider_id,
                        describe(timeout),
                    )
        except Exception:
            log.exception("the receipt timeout sweep failed; trying again shortly")
        await asyncio.sleep(TICK_SECONDS)
