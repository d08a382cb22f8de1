"""Resumes the sandbox's simulated reports after a restart.

The simulated network keeps what it still has to report in memory. After a
crash, simulated messages (sandbox, or a production account wired to the
simulator) wait in ``sent`` (or ``delivered`` before a ``read``); this sweep
pages through them and has the network send the reports their scenario still
owes, which is what a real provider does when it redelivers receipts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.messages.repository import MessageRepository
from tidings.messages.status import Status
from tidings.sandbox.network import SandboxNetwork
from tidings.sandbox.providers import SandboxProvider
from tidings.providers.simulator.scenarios import remaining_steps, scenario_for

log = logging.getLogger("tidings.sandbox")

PAGE = 1000
QUIET_PERIOD = timedelta(seconds=2)
# Reports owed to older messages are given up: a real provider stops retrying too.
HORIZON = timedelta(days=1)


class SandboxRecovery:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        network: SandboxNetwork,
        *,
        interval: float,
        page_size: int = PAGE,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._network = network
        self._interval = interval
        self._page = page_size
        # Where the previous sweep stopped, so every candidate is visited in turn.
        self._cursor: tuple[datetime, str] | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the sandbox recovery sweep failed")
            await asyncio.sleep(self._interval)

    async def sweep(self) -> int:
        """Resume the reports owed to one page of quiet messages; how many resumed."""
        now = self._clock.now()
        async with self._sessions() as session:
            repo = MessageRepository(session)
            stale = await repo.awaiting_reports(
                provider=SandboxProvider.name,
                statuses=[Status.SENT.value, Status.DELIVERED.value],
                updated_between=(now - HORIZON, now - QUIET_PERIOD),
                after=self._cursor,
                limit=self._page,
            )
            reached = await repo.seen_statuses([message.id for message in stale])
        self._cursor = (stale[-1].updated_at, stale[-1].id) if len(stale) == self._page else None
        resumed = 0
        for message in stale:
            if message.provider is None or message.provider_message_id is None:
                continue
            if self._network.is_pending(message.provider_message_id):
                continue
            steps = remaining_steps(
                scenario_for(message.channel, message.to_address), reached[message.id]
            )
            if steps:
                self._network.deliver_later(message.provider, message.provider_message_id, steps)
                resumed += 1
        return resumed
