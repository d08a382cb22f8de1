"""Each provider's agreed rate, shared by every process that sends through it.

A provider whose config names a rate (an SMPP account's ``throughputPerSecond``, a
WhatsApp number's ``messagesPerSecond``) is paced on the same shared schedule as
batches (:mod:`tidings.bulk.pacing`, key ``provider:<provider id>``), for single
sends and batch messages alike. So as not to cost a transaction per message, a
process reserves a short block of slots at a time (a fifth of a second's worth)
on the shared schedule, in one transaction, and hands them out in order; a
"slow down" answer halves the key's rate for a while, as for batches.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.pacing import Rate, Schedule
from tidings.db.group_commit import GroupCommitter

BLOCK_SECONDS = 0.2


def provider_rate(provider_id: str, per_second: float) -> Rate:
    return Rate(f"provider:{provider_id}", per_second)


class ProviderPacer:
    def __init__(self, writer: GroupCommitter) -> None:
        self._writer = writer
        self._slots: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def next_slot(self, rate: Rate) -> float:
        """The time (epoch seconds) the next message under ``rate`` may go."""
        lock = self._locks.setdefault(rate.key, asyncio.Lock())
        async with lock:
            slots = self._slots.setdefault(rate.key, deque())
            while slots and slots[0] < time.time() - BLOCK_SECONDS:
                # Slots left unused too long ago are gone: the schedule moved on.
                slots.popleft()
            if not slots:
                slots.extend(await self._reserve(rate))
            return slots.popleft()

    async def _reserve(self, rate: Rate) -> list[float]:
        count = max(1, int(rate.per_second * BLOCK_SECONDS))

        async def take(session: AsyncSession) -> list[float]:
            schedule = Schedule(session, time.time(), horizon=None)
            await schedule.load([rate.key])
            return [schedule.take_next([rate]) for _ in range(count)]

        return await self._writer.submit(take)
