"""The sandbox's simulated template review, and the sweep that carries it out.

A template created in the sandbox is PENDING with ``review_due_at`` set
``sandbox.template_review_seconds`` ahead; when that time has passed the sweep
decides, deterministically:

- a name containing ``reject`` is REJECTED with reason ``ABUSIVE_CONTENT``
  (a handle for testing the rejected path, like the magic numbers);
- a body with fewer than 3 words of its own text per parameter is REJECTED with
  reason ``INVALID_FORMAT`` (WhatsApp refuses templates that are mostly
  variables);
- anything else is APPROVED.

The verdict and its ``template.updated`` outbox event are written in one
transaction, and only if the template is still PENDING, so two processes
sweeping at once decide once. The due time lives in the database: after a
restart, or in another process, pending templates still get reviewed. Templates
created in production have no due time and stay PENDING (syncing with a
WhatsApp Business account needs a Cloud API provider).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.db.group_commit import GroupCommitter
from tidings.messages.models import OutboxEvent
from tidings.templates.models import Template
from tidings.templates.repository import TemplateRepository
from tidings.templates.schemas import template_payload
from tidings.templates.shape import PLACEHOLDER, placeholders

log = logging.getLogger("tidings.templates")

REJECT_MARK = "reject"
WORDS_PER_PARAMETER = 3
BATCH = 100
MIN_PAUSE = 0.01


def verdict(template: Template) -> tuple[str, str | None]:
    """APPROVED or REJECTED, and the rejection reason (see the module docstring)."""
    if REJECT_MARK in template.name:
        return "REJECTED", "ABUSIVE_CONTENT"
    body = next((c for c in template.components if c.get("type") == "BODY"), {})
    text = str(body.get("text") or "")
    parameters = len(placeholders(text))
    words = [word for word in PLACEHOLDER.sub(" ", text).split() if any(c.isalnum() for c in word)]
    if parameters and len(words) < WORDS_PER_PARAMETER * parameters:
        return "REJECTED", "INVALID_FORMAT"
    return "APPROVED", None


def template_event(template: Template, at: datetime) -> OutboxEvent:
    return OutboxEvent.new(
        account_id=template.account_id,
        environment=template.environment,
        event_type="template.updated",
        subject_id=template.id,
        payload=template_payload(template),
        at=at,
    )


async def review_due(session: AsyncSession, now: datetime, limit: int = BATCH) -> int:
    """Decide the templates whose review is due (inside a write unit); how many."""
    repo = TemplateRepository(session)
    decided = 0
    for template in await repo.due_for_review(now, limit):
        status, reason = verdict(template)
        if await repo.decide(template, status, reason, now):
            session.add(template_event(template, now))
            decided += 1
    return decided


class TemplateReviewer:
    """Runs :func:`review_due` when a review falls due, and every ``interval``
    seconds in case another process created the template."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writer: GroupCommitter,
        clock: Clock,
        *,
        interval: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._clock = clock
        self._interval = interval
        self._on_change = on_change
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """A template was created here: look again at when the next review is due."""
        self._wakeup.set()

    async def sweep(self) -> int:
        """Review what is due now; how many templates were decided."""
        now = self._clock.now()
        async with self._sessions() as session:
            due = await TemplateRepository(session).due_for_review(now, 1)
        if not due:
            return 0

        async def unit(session: AsyncSession) -> int:
            return await review_due(session, now)

        decided = await self._writer.submit(unit)
        if decided and self._on_change is not None:
            self._on_change()
        return decided

    async def next_due(self) -> datetime | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(func.min(Template.review_due_at)).where(
                    Template.review_due_at.is_not(None), Template.status == "PENDING"
                )
            )

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            pause = self._interval
            try:
                await self.sweep()
                due = await self.next_due()
                if due is not None:
                    ahead = (due - self._clock.now()).total_seconds()
                    pause = min(pause, max(ahead, MIN_PAUSE))
            except Exception:
                log.exception("the template review sweep failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), pause)
