"""Periodic clean-up: idempotency keys past 24 hours, revoked tokens past expiry,
inbox reports applied more than a week ago (kept that long to recognise a late
repeat), and deleted providers whose messages are all final.

Runs wherever the dispatcher runs, once an hour; deleting rows that are already
ignored is harmless if two processes do it at once.
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
from tidings.providers.repository import InboxRepository, ProviderRepository

log = logging.getLogger("tidings.housekeeping")

INTERVAL_SECONDS = 3600.0
INBOX_KEPT = timedelta(days=7)


async def purge_once(writer: GroupCommitter, clock: Clock) -> None:
    now = clock.now()

    async def purge(session: AsyncSession) -> None:
        await IdempotencyRepository(session).purge(now)
        await TokenRepository(session).purge_expired(now)
        await InboxRepository(session).purge_done(now - INBOX_KEPT)
        await ProviderRepository(session).purge_deleted(now)

    await writer.submit(purge)


async def run_housekeeping(writer: GroupCommitter, clock: Clock) -> None:
    while True:
        try:
            await purge_once(writer, clock)
        except Exception:
            log.exception("housekeeping failed; trying again later")
        await asyncio.sleep(INTERVAL_SECONDS)
