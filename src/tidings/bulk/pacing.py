"""Pacing: batches go to each provider at its configured rate, whichever process
sends them.

Each rate is a key: ``provider:<account>:<environment>:<channel>`` (messages per
second to that account's provider of that channel) and ``account:<account>:
<environment>`` (all channels together). Its row in ``pace_slots`` holds the
earliest time the next message under it may go; a claim gives each batch
message the first time free under both of its keys and moves them on by one
interval (a virtual schedule in the manner of GCRA), in the claim's
transaction, so dispatchers in several processes share one schedule. Only the
messages whose time falls within the claim's horizon are claimed; the rest stay
in the queue, where a cancel still reaches them.

A provider answering "slow down" (WhatsApp 130429, SMPP 0x58) halves the rates
of that provider's key for a while instead of failing messages.

In the process, :class:`SendGate` holds each send until its time and, to stay
exact however late the event loop runs, never lets more than the rate through
in any one-second window.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.models import PaceSlot
from tidings.settings import BulkSettings

HORIZON_SECONDS = 1.0
SLOWDOWN_SECONDS = 30.0
# After halving, "slow down" answers within this long do not halve again.
SETTLE_SECONDS = 2.0
MIN_SLOW_FACTOR = 0.05


@dataclass(frozen=True, slots=True)
class Rate:
    key: str
    per_second: float


def rates_for(
    settings: BulkSettings, account_id: str, environment: str, channel: str
) -> list[Rate]:
    per_channel = {
        "sms": settings.sms_per_second,
        "whatsapp": settings.whatsapp_per_second,
        "email": settings.email_per_second,
    }.get(channel, 0.0)
    found = []
    if per_channel > 0:
        found.append(Rate(f"provider:{account_id}:{environment}:{channel}", per_channel))
    if settings.account_per_second > 0:
        found.append(Rate(f"account:{account_id}:{environment}", settings.account_per_second))
    return found


class Schedule:
    """The pace rows of one claim, read (and on PostgreSQL locked) once."""

    def __init__(
        self, session: AsyncSession, now: float, *, horizon: float | None = HORIZON_SECONDS
    ) -> None:
        self._session = session
        self._now = now
        self._horizon = horizon
        self._slots: dict[str, PaceSlot] = {}

    async def load(self, keys: Sequence[str]) -> None:
        wanted = sorted(set(keys) - set(self._slots))
        if not wanted:
            return
        await _ensure(self._session, wanted, self._now)
        query = select(PaceSlot).where(PaceSlot.key.in_(wanted))
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        for slot in await self._session.scalars(query):
            self._slots[slot.key] = slot

    def take(self, rates: Sequence[Rate]) -> float | None:
        """The time this message may go, if within the horizon (and the slots move
        on); None when it must wait for a later claim."""
        if not rates:
            return self._now
        at = self._now
        for rate in rates:
            at = max(at, self._slots[rate.key].next_free)
        if self._horizon is not None and at > self._now + self._horizon:
            return None
        for rate in rates:
            slot = self._slots[rate.key]
            slot.next_free = at + 1.0 / self._effective(slot, rate)
        return at

    def take_next(self, rates: Sequence[Rate]) -> float:
        """The next time free under ``rates``, however far ahead (the slots move on)."""
        at = self.take(rates) if self._horizon is None else None
        if at is None:
            raise ValueError("take_next needs a schedule without a horizon")
        return at

    def _effective(self, slot: PaceSlot, rate: Rate) -> float:
        if slot.slowed_until > self._now:
            return rate.per_second * max(slot.slow_factor, MIN_SLOW_FACTOR)
        return rate.per_second


async def _ensure(session: AsyncSession, keys: Sequence[str], now: float) -> None:
    values = [
        {"key": key, "next_free": now, "slowed_until": 0.0, "slow_factor": 1.0} for key in keys
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(PaceSlot).values(values).on_conflict_do_nothing())


async def slow_down(session: AsyncSession, keys: Sequence[str], now: float) -> None:
    """A provider said "slow down": halve these keys' rates for a while."""
    if not keys:
        return
    await _ensure(session, keys, now)
    for slot in await session.scalars(select(PaceSlot).where(PaceSlot.key.in_(sorted(keys)))):
        slowed_at = slot.slowed_until - SLOWDOWN_SECONDS
        if now - slowed_at < SETTLE_SECONDS:
            # The sends that met this answer were paced before the last halving:
            # give the new pace a moment before halving again.
            continue
        factor = slot.slow_factor if slot.slowed_until > now else 1.0
        slot.slow_factor = max(factor / 2, MIN_SLOW_FACTOR)
        slot.slowed_until = now + SLOWDOWN_SECONDS


class SendGate:
    """Holds each paced send until its time, and within any one second lets at most
    the rate through, per key, in this process."""

    # A hair over a second, so that whoever counts the sends a moment later (the
    # provider) never sees a window of one second hold one too many.
    WINDOW = 1.002

    def __init__(self) -> None:
        self._recent: dict[str, collections.deque[float]] = {}

    async def wait(self, send_at: float, rates: Sequence[Rate]) -> None:
        delay = send_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not rates:
            return
        while True:
            now = time.monotonic()
            wait = 0.0
            for rate in rates:
                recent = self._recent.setdefault(rate.key, collections.deque())
                while recent and now - recent[0] >= self.WINDOW:
                    recent.popleft()
                if len(recent) >= max(int(rate.per_second), 1):
                    wait = max(wait, self.WINDOW - (now - recent[0]))
            if wait <= 0:
                # No await between this check and the record: nothing else runs.
                for rate in rates:
                    self._recent[rate.key].append(now)
                return
            await asyncio.sleep(wait)
