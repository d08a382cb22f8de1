"""The durable inbox: everything a provider reports is stored before it is acknowledged,
then applied through the status machine.

:class:`Inbox` is what providers store into (receipts, status webhooks, bounces,
contacts writing in): one multi-row insert, committed, before the provider answers
its network (HTTP 200, ``deliver_sm_resp``, SMTP 250). A repeat of a stored report
(same provider, same dedupe key) is ignored there.

:class:`InboxProcessor`, which any process may run, takes due rows in batches and,
in the same transaction, reads each with its kind's parser and applies it
(:func:`tidings.messages.inbound.apply_reports`, :func:`record_inbound`). A report
about a message whose submission is not recorded yet is tried again (50 ms
doubling to 10 s) for ``unmatched_wait_seconds``, after which it is kept as
``unmatched`` and listed by ``GET /api/v4/providers/{id}/unmatched``. A row that
cannot be read or applied is ``parked`` with the reason after a few tries, never
retried for ever and never in the way of the others. Done rows are purged by
housekeeping after a week (they are what recognises a late repeat).

An SMSC sends a receipt right after it answers the ``submit_sm``, so the receipt is
often stored before the verdict naming its message's ref is committed (the
dispatcher records verdicts one batch at a time). Before each batch the processor
therefore waits for the verdicts its process's dispatcher has in flight
(``verdicts_recorded``): such a receipt then matches at its first try instead of
being read, found unmatched and applied again 50 ms later.

On PostgreSQL several processors share the inbox: each locks the rows it took
(``FOR UPDATE SKIP LOCKED``) for the one transaction that applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.db.group_commit import GroupCommitter
from tidings.messages.inbound import apply_reports, record_contact_update, record_inbound
from tidings.providers.base import (
    ContactUpdate,
    InboundMessage,
    RawReport,
    ReportParser,
    StatusReport,
)
from tidings.providers.models import InboxEvent
from tidings.providers.repository import (
    InboxRepository,
    PendingReport,
    inbox_rows,
    retry_at,
)

log = logging.getLogger("tidings.inbox")

BATCH = 500
GATHER_SECONDS = 0.05
MAX_APPLY_TRIES = 5


@dataclass(frozen=True, slots=True)
class ReportSource:
    """Who stored a report: what its payload means, and whose it is."""

    kind: str
    parse: ReportParser
    account_id: str | None
    environment: Environment


SourceLookup = Callable[[str], Awaitable[ReportSource | None]]


class Inbox:
    """Where providers store what they report (:class:`~tidings.providers.base.ReportSink`)."""

    def __init__(
        self,
        writer: GroupCommitter,
        clock: Clock,
        *,
        on_stored: Callable[[float], None] = lambda delay: None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._on_stored = on_stored

    async def store(self, provider_id: str, reports: Sequence[RawReport]) -> int:
        if not reports:
            return 0
        rows = inbox_rows(provider_id, reports, self._clock.now())

        async def insert(session: AsyncSession) -> int:
            return await InboxRepository(session).store(rows)

        stored = await self._writer.submit(insert)
        self._on_stored(min(report.due_in_seconds for report in reports))
        return stored


class InboxProcessor:
    def __init__(
        self,
        writer: GroupCommitter,
        clock: Clock,
        *,
        sources: SourceLookup,
        unmatched_wait_seconds: float,
        poll_interval_seconds: float,
        on_committed: Callable[[], None] = lambda: None,
        verdicts_recorded: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._sources = sources
        self._verdicts_recorded = verdicts_recorded
        self._unmatched_wait = timedelta(seconds=unmatched_wait_seconds)
        self._poll = poll_interval_seconds
        self._on_committed = on_committed
        self._wake = asyncio.Event()
        self._next_due: float | None = None
        self._stopping = False
        self.applied = 0

    def stored(self, due_in_seconds: float) -> None:
        """Reports were stored, the first due in this many seconds: look then."""
        loop = asyncio.get_running_loop()
        due = loop.time() + due_in_seconds
        if self._next_due is None or due < self._next_due:
            self._next_due = due
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            self._next_due = None
            try:
                if self._verdicts_recorded is not None:
                    # The receipts just stored came right after their submissions'
                    # answers: their verdicts, in flight here, are recorded first.
                    await self._verdicts_recorded()
                taken = await self.drain_once()
            except Exception:
                log.exception("applying inbox reports failed; trying again shortly")
                taken = 0
                await asyncio.sleep(self._poll)
            if taken >= BATCH:
                continue
            if taken:
                # Reports come in a stream (every accepted message brings its own): a
                # moment's pause lets the next batch gather, one transaction for many
                # instead of one for each.
                await asyncio.sleep(GATHER_SECONDS)
            timeout = self._poll
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            # Woken by a report due later: sleep until it is due.
            while (
                not self._stopping and self._next_due is not None and self._next_due > loop.time()
            ):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_due - loop.time())

    async def drain_once(self) -> int:
        """Apply one batch of due reports; how many rows were taken."""
        now = self._clock.now()
        taken: list[int] = []

        async def unit(session: AsyncSession) -> None:
            inbox = InboxRepository(session)
            rows = await inbox.due(now, BATCH)
            taken.extend(row.id for row in rows)
            await self._apply(session, rows, now)
            await inbox.finish(rows)

        try:
            await self._writer.submit(unit)
        except Exception:
            if not taken:
                raise
            # One bad row must not hold up the batch: each alone, in its own unit.
            log.exception(
                "a batch of %d inbox reports failed; applying them one by one", len(taken)
            )
            for row_id in taken:
                await self._apply_alone(row_id, now)
        if taken:
            self.applied += len(taken)
            self._on_committed()
        return len(taken)

    async def _apply_alone(self, row_id: int, now: datetime) -> None:
        async def unit(session: AsyncSession) -> None:
            inbox = InboxRepository(session)
            row = await inbox.one(row_id)
            if row is not None:
                await self._apply(session, [row], now)
                await inbox.finish([row])

        try:
            await self._writer.submit(unit)
        except Exception as error:
            log.exception("inbox report %d could not be applied", row_id)
            failure = type(error).__name__

            async def note(session: AsyncSession) -> None:
                row = await session.get(InboxEvent, row_id)
                if row is None:
                    return
                row.attempts += 1
                if row.attempts >= MAX_APPLY_TRIES:
                    row.state = "parked"
                    row.error = f"could not be applied: {failure}"
                else:
                    row.due_at = retry_at(now, row.attempts)

            await self._writer.submit(note)

    async def _apply(
        self, session: AsyncSession, rows: Sequence[PendingReport], now: datetime
    ) -> None:
        by_provider: dict[str, list[PendingReport]] = defaultdict(list)
        for row in rows:
            by_provider[row.provider_id].append(row)
        for provider_id, events in by_provider.items():
            source = await self._sources(provider_id)
            if source is None:
                for event in events:
                    self._park(event, "no such provider")
                continue
            await self._apply_provider(session, provider_id, source, events, now)

    async def _apply_provider(
        self,
        session: AsyncSession,
        provider_id: str,
        source: ReportSource,
        events: Sequence[PendingReport],
        now: datetime,
    ) -> None:
        statuses: list[tuple[PendingReport, StatusReport]] = []
        for event in events:
            try:
                reports = source.parse(event.payload)
            except (KeyError, ValueError, TypeError) as error:
                self._park(event, f"unreadable report: {type(error).__name__}: {error}"[:500])
                continue
            for report in reports:
                if isinstance(report, InboundMessage):
                    if source.account_id is None:
                        continue
                    await record_inbound(
                        session,
                        report,
                        account_id=source.account_id,
                        environment=source.environment,
                        provider_kind=source.kind,
                        provider_id=provider_id,
                    )
                elif isinstance(report, ContactUpdate):
                    if source.account_id is None:
                        continue
                    await record_contact_update(
                        session,
                        report,
                        account_id=source.account_id,
                        environment=source.environment,
                    )
                else:
                    statuses.append((event, report))
            event.state = "done"
        if not statuses:
            return
        unmatched = await apply_reports(session, provider_id, [report for _, report in statuses])
        waiting = {id(report) for report in unmatched}
        for event, report in statuses:
            if id(report) in waiting:
                self._wait(event, now)

    def _wait(self, event: PendingReport, now: datetime) -> None:
        event.attempts += 1
        if now - event.received_at >= self._unmatched_wait:
            event.state = "unmatched"
            event.error = "no message has this provider id"
            return
        event.state = "pending"
        event.due_at = retry_at(now, event.attempts)
        self._hint(event.due_at, now)

    def _hint(self, due: datetime, now: datetime) -> None:
        with contextlib.suppress(RuntimeError):
            self.stored((due - now).total_seconds())

    @staticmethod
    def _park(event: PendingReport, reason: str) -> None:
        event.state = "parked"
        event.error = reason


def describe(event: InboxEvent) -> dict[str, Any]:
    """An unmatched or parked report as ``GET /providers/{id}/unmatched`` answers it."""
    return {
        "id": str(event.id),
        "state": event.state,
        "receivedAt": event.received_at,
        "attempts": event.attempts,
        "error": event.error,
        "payload": event.payload,
    }
