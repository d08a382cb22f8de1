"""Periodic clean-up: idempotency keys past 24 hours, revoked tokens past expiry,
inbox reports applied more than a week ago (kept that long to recognise a late
repeat), and deleted providers whose messages are all final.

Runs wherever the dispatcher runs, once an hour; deleting rows that are already
ignored is harmless if two processes do it at once. The two tables that grow with
traffic (idempotency keys, inbox reports: an hour of them is millions of rows at a
thousand messages a second) are purged in steps of :data:`PURGE_STEP` rows, each its
own turn at the group committer, so that sends and verdicts are committed between
them instead of waiting behind one long delete.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.repository import TokenRepository
from tidings.core.clock import Clock
from tidings.db.group_commit import GroupCommitter
from tidings.idempotency.service import IdempotencyRepository
from tidings.providers.repository import InboxRepository, ProviderRepository, PurgeStep

log = logging.getLogger("tidings.housekeeping")

INTERVAL_SECONDS = 3600.0
INBOX_KEPT = timedelta(days=7)


PURGE_STEP = 1000


async def purge_once(writer: GroupCommitter, clock: Clock, *, step: int = PURGE_STEP) -> int:
    """One round of clean-up; how many rows it deleted from the two large tables."""
    now = clock.now()

    async def purge_small(session: AsyncSession) -> None:
        await TokenRepository(session).purge_expired(now)
        await ProviderRepository(session).purge_deleted(now)

    await writer.submit(purge_small)
    deleted = 0
    more = True
    while more:

        async def purge_keys(session: AsyncSession) -> tuple[int, bool]:
            return await IdempotencyRepository(session).purge(now, limit=step)

        count, more = await writer.submit(purge_keys)
        deleted += count
    after_id = 0
    more = True
    while more:

        async def purge_reports(session: AsyncSession, after: int = after_id) -> PurgeStep:
            return await InboxRepository(session).purge_done(
                now - INBOX_KEPT, after_id=after, limit=step
            )

        done = await writer.submit(purge_reports)
        deleted += done.deleted
        after_id, more = done.last_id, done.more
    return deleted


async def run_housekeeping(writer: GroupCommitter, clock: Clock) -> None:
    while True:
        try:
            await purge_once(writer, clock)
        except Exception:
            log.exception("housekeeping failed; trying again later")
        await asyncio.sleep(INTERVAL_SECONDS)
