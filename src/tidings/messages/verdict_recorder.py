"""Recording the dispatcher's verdicts, in batches, and telling who waits for them.

Each submission's verdict is queued here; one task records what has gathered (up to
a thousand at a time) through the group committer, or on PostgreSQL in a transaction
of its own (:meth:`VerdictRecorder.record_once` says why), tries a failed batch
again a few times, then answers the requests that wait for those verdicts, tells the
inbox when their receipts are due, and wakes what follows commits. The inbox
processor can wait here until every verdict queued so far is recorded
(:meth:`VerdictRecorder.recorded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.group_commit import GroupCommitter
from tidings.messages.verdicts import Verdict, VerdictWriter
from tidings.messages.waiters import VerdictWaiters

log = logging.getLogger("tidings.dispatcher")

# The longest the inbox processor waits for verdicts in flight (recorded).
RECORDED_WAIT_SECONDS = 1.0
# Verdicts recorded in one transaction at most.
BATCH = 1000


class VerdictRecorder:
    def __init__(
        self,
        *,
        writer: GroupCommitter,
        verdict_writer: VerdictWriter,
        waiters: VerdictWaiters,
        on_reports: Callable[[float], None],
        on_committed: Callable[[], None],
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._writer = writer
        self._verdict_writer = verdict_writer
        self._waiters = waiters
        self._on_reports = on_reports
        self._on_committed = on_committed
        self._sessions = sessions
        self._queue: asyncio.Queue[Verdict] = asyncio.Queue()
        # Verdicts queued and recorded so far, and who waits for the ones queued by a
        # given count to be recorded (:meth:`recorded`).
        self._queued = 0
        self._recorded = 0
        self._recorded_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def put(self, verdict: Verdict) -> None:
        self._queue.put_nowait(verdict)
        self._queued += 1

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            await self._record(batch)

    async def flush(self) -> None:
        """Record what is queued now (at a stop, once the recording task is gone)."""
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._record(batch)

    async def _record(self, batch: list[Verdict]) -> None:
        settled: dict[str, dict[str, object] | None] = {}
        for attempt in range(5):
            try:
                settled = await self.record_once(batch)
                break
            except Exception:
                log.exception("recording %d verdicts failed (try %d)", len(batch), attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            # The leases will run out and the messages be sent again: at least once.
            log.error("gave up recording %d verdicts", len(batch))
        self._recorded += len(batch)
        self._release_recorded_waiters()
        for message_id, resource in settled.items():
            self._waiters.resolve(message_id, resource)
        due = [report.due_in_seconds for verdict in batch for report in verdict.reports]
        if due:
            self._on_reports(min(due))
        self._on_committed()

    async def record_once(self, batch: list[Verdict]) -> dict[str, dict[str, object] | None]:
        if self._sessions is None:
            return await self._writer.submit(
                lambda session: self._verdict_writer.apply(session, batch)
            )
        # PostgreSQL: a transaction of its own, as the claim's, so a verdict never
        # waits behind the group's other writes (a receipt, the webhook fan-out);
        # PostgreSQL's row locks order it against them, as against other workers'.
        async with self._sessions() as session:
            settled = await self._verdict_writer.apply(session, batch)
            await session.commit()
        return settled

    async def recorded(self) -> None:
        """Return once every verdict queued so far is recorded (or after
        ``RECORDED_WAIT_SECONDS``).

        An SMSC sends a receipt right after its ``submit_sm_resp``, and storing it
        takes one group commit while the verdict that writes the message's ref may
        wait for the one before: the inbox processor calls this before it applies
        what was stored, so such a receipt finds its message at the first try
        instead of being read, found unmatched and applied again 50 ms later."""
        target = self._queued
        if self._recorded >= target:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._recorded_waiters.append((target, waiter))
        # A recorder that stops (or gives up) must not hold the inbox for long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, RECORDED_WAIT_SECONDS)

    def _release_recorded_waiters(self) -> None:
        recorded = self._recorded
        waiting: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._recorded_waiters:
            if waiter.done():
                continue
            if target <= recorded:
                waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._recorded_waiters = waiting
