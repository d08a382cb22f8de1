"""Fan-out: turns committed outbox events into one delivery per matching endpoint.

Each pass reads outbox events not yet fanned out, in id order, and in one
transaction writes their deliveries and marks them in ``webhook_fanned_events``,
so a crash between the two is impossible and no event is fanned out twice
(``(endpoint_id, event_id)`` is unique as well). Ids sort by creation time, but
a transaction may commit after a later one, so each pass looks back
``LOOKBACK`` before the newest event fanned out rather than strictly after it.

The loop is woken by every commit that may have written events (each send), most
of which wrote none (no endpoint wants them): it first looks, in a read of its own,
whether any event waits, and takes a turn at the group committer only then. A pass
that finds nothing still took the writer's lock (on SQLite, every process's) for as
long as its reads; sends waited behind it. Wake-ups within ``LOOK_INTERVAL_SECONDS``
of a look share the next one, so a webhook may start that much later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.core.ids import new_id
from tidings.db.group_commit import GroupCommitter
from tidings.messages.models import OutboxEvent
from tidings.settings import WebhookSettings
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint
from tidings.webhooks.repository import WebhookRepository

log = logging.getLogger("tidings.webhooks")

LOOKBACK_MS = 300_000
BATCH = 500
# Looks at most this often: each send may wake the loop, and each look is a read.
LOOK_INTERVAL_SECONDS = 0.02
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def matches(patterns: list[str], event_type: str) -> bool:
    """Exact names, ``prefix.*`` or ``*``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def _ulid_time_ms(event_id: str) -> int:
    value = 0
    for char in event_id.split("_", 1)[1][:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value


def floor_before(event_id: str, lookback_ms: int = LOOKBACK_MS) -> str:
    """The smallest ``evt_`` id made ``lookback_ms`` before ``event_id``."""
    ms = max(0, _ulid_time_ms(event_id) - lookback_ms)
    chars = []
    for _ in range(10):
        chars.append(_ALPHABET[ms & 31])
        ms >>= 5
    return "evt_" + "".join(reversed(chars)) + "0" * 16


def delivery_for(endpoint: WebhookEndpoint, event: OutboxEvent, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("dlv"),
        endpoint_id=endpoint.id,
        event_id=event.id,
        event_type=event.type,
        subject_id=event.subject_id,
        payload=event.payload,
        event_at=event.created_at,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


class Fanout:
    def __init__(
        self,
        *,
        writer: GroupCommitter,
        clock: Clock,
        settings: WebhookSettings,
        on_deliveries: Callable[[], None] = lambda: None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        """``sessions``: for the look before each pass (without, every wake-up
        makes a pass)."""
        self._writer = writer
        self._sessions = sessions
        self._clock = clock
        self._settings = settings
        self._on_deliveries = on_deliveries
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            # Cleared before the pass, not after: a wake-up (new events, or stop)
            # that comes during the pass must not wait for the next poll.
            self._wake.clear()
            try:
                if await self._anything_waits():
                    seen, created = await self._writer.submit(self._pass)
                else:
                    seen, created = 0, 0
            except Exception:
                log.exception("webhook fan-out failed; trying again shortly")
                seen, created = 0, 0
            if created:
                self._on_deliveries()
            if seen >= BATCH:
                continue
            looked = asyncio.get_running_loop().time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)
            # Wake-ups closer together than this share one look.
            rest = looked + LOOK_INTERVAL_SECONDS - asyncio.get_running_loop().time()
            if rest > 0 and not self._stopping:
                await asyncio.sleep(rest)

    async def _anything_waits(self) -> bool:
        """Whether an event not fanned out yet is there (a read: the lookback's
        window, as the pass reads it)."""
        if self._sessions is None:
            return True
        async with self._sessions() as session:
            repo = WebhookRepository(session)
            _, floor = await _window(repo)
            return await repo.any_unfanned(floor)

    async def _pass(self, session: AsyncSession) -> tuple[int, int]:
        """One batch: (events read, deliveries created). Database calls only."""
        repo = WebhookRepository(session)
        cursor, floor = await _window(repo)
        events = await repo.unfanned_events(floor, BATCH)
        if not events:
            return 0, 0
        now = self._clock.now()
        scopes = {(event.account_id, event.environment) for event in events}
        endpoints = await repo.endpoints_of(scopes)
        created = 0
        for event in events:
            for endpoint in endpoints[(event.account_id, event.environment)]:
                # An endpoint hears of what happened after it was created.
                if event.created_at < endpoint.created_at or not matches(
                    endpoint.events, event.type
                ):
                    continue
                session.add(delivery_for(endpoint, event, now))
                created += 1
        await repo.mark_fanned([event.id for event in events])
        if floor is not None and len(events) < BATCH:
            await repo.prune_fanned(floor_before(cursor or floor, 2 * LOOKBACK_MS))
        return len(events), created


async def _window(repo: WebhookRepository) -> tuple[str | None, str | None]:
    """The newest event fanned out, and the floor that the look and the pass both
    read after (``LOOKBACK`` before it; None before the first pass)."""
    cursor = await repo.fan_out_cursor()
    return cursor, floor_before(cursor) if cursor else None
