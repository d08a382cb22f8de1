"""A batch as the API shows it, its cancel, and the sweep that completes batches.

The sweep runs wherever dispatchers run: every second it looks at the batches
not yet finished, and one whose messages are all final is marked finished and
fires ``batch.completed``, once, in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.bulk.models import Batch
from tidings.bulk.repository import BatchRepository
from tidings.bulk.schemas import BatchOut
from tidings.core.clock import Clock
from tidings.core.errors import Conflict
from tidings.db.group_commit import GroupCommitter
from tidings.messages.status import FINAL, Status

log = logging.getLogger("tidings.batches")

SWEEP_SECONDS = 1.0


def shown_status(batch: Batch, now: datetime) -> str:
    if batch.status == "scheduled" and batch.scheduled_at is not None and batch.scheduled_at <= now:
        return "accepted"
    if batch.status == "canceling":
        return "canceled"
    return batch.status


def batch_out(batch: Batch, counts: dict[str, int], now: datetime) -> BatchOut:
    pending = sum(n for status, n in counts.items() if Status(status) not in FINAL)
    return BatchOut(
        id=batch.id,
        channel=batch.channel,
        name=batch.name,
        status=shown_status(batch, now),
        total=batch.total,
        accepted=batch.accepted,
        rejected=batch.rejected,
        duplicates=batch.duplicates,
        credits=float(batch.credits or 0),
        counts=counts,
        pending=pending,
        scheduled_at=batch.scheduled_at,
        created_at=batch.created_at,
        started_at=batch.started_at,
        canceled_at=batch.canceled_at,
        finished_at=batch.finished_at,
    )


async def cancel_batch(session: AsyncSession, batch: Batch, at: datetime) -> int:
    """Cancel what is not yet sent; 409 when the batch is already finished."""
    if batch.finished_at is not None:
        raise Conflict(
            f"Batch {batch.id} is {batch.status}: every message already reached a final status.",
            code="batch_finished",
        )
    canceled = await BatchRepository(session).cancel_unsent(batch, at)
    if batch.status != "canceling":
        batch.status, batch.canceled_at = "canceling", at
    return canceled


async def complete_finished(session: AsyncSession, clock: Clock) -> list[str]:
    """Finish every open batch with no message left to settle; their ids."""
    repo = BatchRepository(session)
    finished = []
    for batch in await repo.open_batches():
        now = clock.now()
        if batch.status == "scheduled" and batch.scheduled_at and batch.scheduled_at > now:
            continue
        if await repo.pending(batch.id):
            continue
        if not await repo.finish(batch, now):
            continue
        counts = await repo.counts(batch.id)
        repo.completed_event(
            batch, batch_out(batch, counts, now).model_dump(mode="json", by_alias=True), now
        )
        finished.append(batch.id)
    return finished


async def run_completion_sweep(
    writer: GroupCommitter, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    while True:
        try:
            async with sessions() as session:
                looking = bool(await BatchRepository(session).open_batches(limit=1))
            if looking:
                done = await writer.submit(lambda session: complete_finished(session, clock))
                if done:
                    log.info("batches completed: %s", ", ".join(done))
        except Exception:
            log.exception("the batch completion sweep failed; trying again shortly")
        await asyncio.sleep(SWEEP_SECONDS)
