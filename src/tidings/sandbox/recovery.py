"""Resumes the sandbox's simulated reports after a restart.

The simulated network keeps what it still has to report in memory. After a
crash, sandbox messages wait in ``sent`` (or ``delivered`` before a ``read``);
this sweep finds them and has the network send the reports their scenario still
owes, which is what a real provider does when it redelivers receipts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.messages.repository import MessageRepository
from tidings.messages.status import Status
from tidings.sandbox.network import SandboxNetwork
from tidings.sandbox.scenarios import remaining_steps, scenario_for

log = logging.getLogger("tidings.sandbox")

SWEEP_LIMIT = 2000
QUIET_PERIOD = timedelta(seconds=2)


class SandboxRecovery:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        network: SandboxNetwork,
        *,
        interval: float,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._network = network
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the sandbox recovery sweep failed")
            await asyncio.sleep(self._interval)

    async def sweep(self) -> int:
        """Resume the reports owed to quiet sandbox messages; how many were resumed."""
        older_than = self._clock.now() - QUIET_PERIOD
        async with self._sessions() as session:
            repo = MessageRepository(session)
            stale = await repo.stale_sandbox_messages(
                [Status.SENT.value, Status.DELIVERED.value], older_than, SWEEP_LIMIT
            )
            reached = await repo.seen_statuses([message.id for message in stale])
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
