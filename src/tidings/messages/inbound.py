"""The inbound path: provider reports about sent messages, and contacts writing in.

Real providers (webhooks, SMPP receipts, bounces) and the sandbox's simulated
network all come through here, so statuses only ever change through the status
machine, with their events and outbox rows in one transaction per batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.base import InboundMessage, StatusReport
from tidings.contacts.optouts import OptOutRepository, keyword
from tidings.contacts.suppressions import SUPPRESSING_EVENTS, SuppressionRepository
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.db.group_commit import GroupCommitter
from tidings.messages import status_writer
from tidings.messages.models import Message, MessageEvent
from tidings.messages.repository import MessageRepository
from tidings.messages.rows import rows_by_provider_ids
from tidings.messages.schemas import message_payload
from tidings.messages.status import Status
from tidings.messages.status_writer import RowChange

log = logging.getLogger("tidings.inbound")

EMAIL_EVENTS = {
    "bounced": "email.bounced",
    "opened": "email.opened",
    "clicked": "email.clicked",
    "complained": "email.complained",
    "unsubscribed": "email.unsubscribed",
}


# Events that happen once per message; opens and clicks repeat.
ONCE = frozenset({"bounced", "complained", "unsubscribed"})
# Events whose first occurrence is marked ("first": true in the detail).
REPEATABLE = frozenset({"opened", "clicked"})


class InboundProcessor:
    """Implements :class:`~tidings.channels.base.StatusSink` for every provider."""

    def __init__(
        self,
        writer: GroupCommitter,
        clock: Clock,
        *,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._on_committed = on_committed

    async def report(self, reports: list[StatusReport]) -> list[StatusReport]:
        by_provider: dict[str, list[StatusReport]] = defaultdict(list)
        for report in reports:
            by_provider[report.provider].append(report)

        async def apply(session: AsyncSession) -> list[StatusReport]:
            unmatched: list[StatusReport] = []
            repo = MessageRepository(session)
            for provider, batch in by_provider.items():
                # Plain receipts (the bulk of the traffic) go through the row path;
                # engagement reports (opened, bounced...) through the object path.
                plain = [report for report in batch if report.event is None]
                if plain:
                    unmatched += await self._apply_receipts(session, provider, plain)
                engaged = [report for report in batch if report.event is not None]
                if not engaged:
                    continue
                ids = sorted({report.provider_message_id for report in engaged})
                messages = {
                    message.provider_message_id: message
                    for message in await repo.by_provider_ids(provider, ids)
                }
                seen = await repo.seen_statuses([message.id for message in messages.values()])
                for report in engaged:
                    message = messages.get(report.provider_message_id)
                    if message is None:
                        unmatched.append(report)
                        continue
                    await self._apply(session, message, report, seen[message.id])
            return unmatched

        unmatched = await self._writer.submit(apply)
        if len(unmatched) < len(reports):
            self._on_committed()
        return unmatched

    async def _apply_receipts(
        self, session: AsyncSession, provider: str, reports: list[StatusReport]
    ) -> list[StatusReport]:
        """Status receipts, as rows; those naming no known message come back."""
        ids = sorted({report.provider_message_id for report in reports})
        found = await rows_by_provider_ids(session, provider, ids)
        seen = await MessageRepository(session).seen_statuses([row["id"] for row in found.values()])
        unmatched: list[StatusReport] = []
        changes: list[RowChange] = []
        for report in reports:
            row = found.get(report.provider_message_id)
            if row is None:
                unmatched.append(report)
                continue
            # A duplicate receipt is dropped, not recorded again.
            if report.status in seen[row["id"]]:
                continue
            seen[row["id"]].add(report.status)
            values = (
                {"error_code": report.error_code, "error_message": report.error_message}
                if report.error_code is not None
                else {}
            )
            changes.append(RowChange(row, report.status, report.at, values=values))
        await status_writer.change_rows(session, changes)
        return unmatched

    async def _apply(
        self, session: AsyncSession, message: Message, report: StatusReport, seen: set[str]
    ) -> None:
        # An engagement report (opened, clicked...) implies its status too: an "opened"
        # that overtakes "delivered" still delivers the message.
        await status_writer.change(
            session,
            message,
            report.status,
            report.at,
            error_code=report.error_code,
            error_message=report.error_message,
            seen=seen,
        )
        if report.event is not None:
            await self._email_event(session, message, report, report.event, seen)

    async def _email_event(
        self,
        session: AsyncSession,
        message: Message,
        report: StatusReport,
        event: str,
        seen: set[str],
    ) -> None:
        detail = dict(report.detail)
        if report.error_message:
            detail["error"] = report.error_message
        recorded = self._record_event(session, message, event, report.at, detail, seen)
        # Only a hard bounce (the message is undelivered) suppresses; soft ones retry.
        hard = event != "bounced" or report.status == Status.UNDELIVERED
        if recorded and hard:
            await self._suppress(session, message, event, report.at)

    @staticmethod
    async def _suppress(session: AsyncSession, message: Message, event: str, at: datetime) -> None:
        """A hard bounce, complaint or unsubscribe puts the recipient on the
        suppression list, in the same transaction as its event (database calls only)."""
        reason = SUPPRESSING_EVENTS.get(event)
        if reason is None or message.channel != "email" or not message.to_address:
            return
        await SuppressionRepository(session).add(
            message.account_id,
            message.environment,
            message.to_address,
            reason=reason,
            message_id=message.id,
            at=at,
        )

    def _record_event(
        self,
        session: AsyncSession,
        message: Message,
        event: str,
        at: datetime,
        detail: dict[str, Any],
        seen: set[str],
    ) -> bool:
        """Add an engagement event row and its outbox row; False when dropped (a
        repeat of a once-only event). The first open and the first click of a
        message carry ``"first": true``; repeats are recorded without it."""
        if event in seen:
            if event in ONCE:
                return False
        elif event in REPEATABLE:
            detail = {**detail, "first": True}
        seen.add(event)
        session.add(
            MessageEvent(
                message_id=message.id,
                status=message.status,
                at=at,
                applied=False,
                kind=event,
                detail=detail or None,
            )
        )
        event_type = EMAIL_EVENTS.get(event)
        if event_type is not None:
            payload = {**message_payload(message), "event": event, "detail": detail}
            session.add(status_writer.outbox_event(message, event_type, at, data=payload))
        return True

    async def engagement(
        self, message_id: str, event: str, at: datetime, detail: dict[str, Any] | None = None
    ) -> bool:
        """Record what a recipient did with an email (``opened``, ``clicked``,
        ``unsubscribed``), seen by our own tracking links: the message is found by
        id, whatever its environment. An open or click proves delivery, so a message
        still ``sent`` becomes ``delivered``. False when there is no such message."""

        async def apply(session: AsyncSession) -> bool:
            repo = MessageRepository(session)
            message = await repo.get_by_id(message_id)
            if message is None or message.channel != "email":
                return False
            seen = (await repo.seen_statuses([message.id]))[message.id]
            if message.status == Status.SENT:
                await status_writer.change(session, message, Status.DELIVERED, at, seen=seen)
            if self._record_event(session, message, event, at, dict(detail or {}), seen):
                await self._suppress(session, message, event, at)
            return True

        found = await self._writer.submit(apply)
        if found:
            self._on_committed()
        return found

    async def receive(self, inbound: InboundMessage) -> Message:
        """Record a contact's message; STOP and START change its SMS opt-out."""

        async def record(session: AsyncSession) -> Message:
            message = Message(
                id=new_id("msg"),
                account_id=inbound.account_id,
                environment=inbound.environment.value,
                channel=inbound.channel,
                direction="inbound",
                to_address=inbound.recipient or "",
                from_address=inbound.sender,
                body=inbound.body,
                content=inbound.content,
                credits=0,
                attempts=0,
                provider=inbound.provider,
                provider_message_id=inbound.provider_message_id,
            )
            await status_writer.start(session, message, Status.RECEIVED, inbound.at)
            if inbound.channel == "sms":
                await self._opt_out_keywords(session, inbound, message)
            return message

        message = await self._writer.submit(record)
        self._on_committed()
        return message

    async def _opt_out_keywords(
        self, session: AsyncSession, inbound: InboundMessage, message: Message
    ) -> None:
        word = keyword(inbound.body)
        if word is None:
            return
        optouts = OptOutRepository(session)
        environment = Environment(inbound.environment)
        if word == "start":
            await optouts.opt_in(inbound.account_id, environment, "sms", inbound.sender)
            return
        added = await optouts.opt_out(
            inbound.account_id, environment, "sms", inbound.sender, reason="stop", at=inbound.at
        )
        if added:
            session.add(
                status_writer.outbox_event(
                    message,
                    "contact.opted_out",
                    inbound.at,
                    data={"channel": "sms", "phone": inbound.sender, "keyword": inbound.body},
                )
            )
