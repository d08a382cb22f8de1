"""The far side of the sandbox providers: it "delivers" and reports back.

Accepted messages get their scenario's reports after short delays, sent in
batches through the :class:`~tidings.channels.base.StatusSink` that real
providers' receipts also use. Reports that arrive before the dispatcher has
recorded the submission (as happens with real providers too) are tried again.
What is pending lives in memory; :mod:`tidings.sandbox.recovery` resumes it from
the database after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from dataclasses import replace

from tidings.channels.base import StatusReport, StatusSink
from tidings.core.clock import Clock
from tidings.providers.simulator.scenarios import Step

log = logging.getLogger("tidings.sandbox")

MAX_REDELIVERIES = 200
REDELIVERY_DELAY = 0.05


class SandboxNetwork:
    def __init__(self, sink: StatusSink, clock: Clock, *, delay_seconds: float) -> None:
        self._sink = sink
        self._clock = clock
        self._delay = delay_seconds
        self._heap: list[tuple[float, int, StatusReport, int]] = []
        self._sequence = itertools.count()
        self._changed = asyncio.Event()
        self._pending: dict[str, int] = {}
        self.reports_sent = 0

    def deliver_later(
        self, provider: str, provider_message_id: str, steps: tuple[Step, ...]
    ) -> None:
        now = time.monotonic()
        for index, step in enumerate(steps, start=1):
            self._push(
                now + self._delay * index, self._report(provider, provider_message_id, step), 0
            )

    def _report(self, provider: str, provider_message_id: str, step: Step) -> StatusReport:
        return StatusReport(
            provider=provider,
            provider_message_id=provider_message_id,
            status=step.status,
            at=self._clock.now(),
            error_code=step.error_code,
            error_message=step.error_message,
            event=step.event,
        )

    def _push(self, due: float, report: StatusReport, tries: int) -> None:
        heapq.heappush(self._heap, (due, next(self._sequence), report, tries))
        key = report.provider_message_id
        self._pending[key] = self._pending.get(key, 0) + 1
        self._changed.set()

    def _popped(self, report: StatusReport) -> None:
        key = report.provider_message_id
        left = self._pending.get(key, 1) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)

    def is_pending(self, provider_message_id: str) -> bool:
        return provider_message_id in self._pending

    @property
    def pending(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            due: list[tuple[StatusReport, int]] = []
            while self._heap and self._heap[0][0] <= now:
                _, _, report, tries = heapq.heappop(self._heap)
                self._popped(report)
                due.append((report, tries))
            if due:
                await self._send(due)
                continue
            self._changed.clear()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def _send(self, due: list[tuple[StatusReport, int]]) -> None:
        # Reports are stamped with the time they are sent, as a receipt would be.
        stamped = [(replace(report, at=self._clock.now()), tries) for report, tries in due]
        reports = [report for report, _ in stamped]
        try:
            unmatched = await self._sink.report(reports)
        except Exception:
            log.exception("the sandbox could not report %d statuses; retrying", len(reports))
            unmatched = reports
        unmatched_ids = {id(report) for report in unmatched}
        self.reports_sent += len(reports) - len(unmatched)
        retry_at = time.monotonic() + REDELIVERY_DELAY
        for report, tries in stamped:
            if id(report) not in unmatched_ids:
                continue
            if tries + 1 < MAX_REDELIVERIES:
                self._push(retry_at, report, tries + 1)
            else:
                log.warning("dropped a sandbox report for unknown %s", report.provider_message_id)
