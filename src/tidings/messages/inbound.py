"""Applying what providers report, and contacts writing in, through the status machine.

Reports reach here from the inbox (:mod:`tidings.providers.inbox`), which stored them
durably first: :func:`apply_reports` finds each report's message through the ids the
provider gave it (``provider_refs``: provider **and** external id), and hands back
those naming no known message yet (the verdict recording the submission may still
be on its way), for the inbox to try again. Our own tracking hits (opens, clicks,
unsubscribes) and the sandbox's simulated contacts writing in come through
:class:`InboundProcessor` directly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.whatsapp.chats import chat_id
from tidings.contacts.optouts import OptOutRepository, keyword
from tidings.contacts.suppressions import SUPPRESSING_EVENTS, SuppressionRepository
from tidings.contacts.whatsapp import change, learn, remember, seen_of
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.db.group_commit import GroupCommitter
from tidings.messages import status_writer
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.messages.repository import MessageRepository
from tidings.messages.rows import load_rows
from tidings.messages.schemas import message_payload
from tidings.messages.status import Status, applies
from tidings.messages.status_writer import WRITTEN, RowChange
from tidings.providers.base import ContactUpdate, InboundMessage, StatusReport
from tidings.providers.repository import RefRepository
from tidings.webhooks.subscriptions import Subscriptions

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
# Of those, the ones that happen once per recipient: an email's Cc bounces (or
# complains) apart from its To (the event's detail names the recipient).
PER_RECIPIENT = frozenset({"bounced", "complained"})
# Events whose first occurrence is marked ("first": true in the detail).
REPEATABLE = frozenset({"opened", "clicked"})


async def apply_reports(
    session: AsyncSession, provider_id: str, reports: Sequence[StatusReport]
) -> list[StatusReport]:
    """Apply one provider's reports in this transaction; those naming no known
    message come back."""
    refs = await RefRepository(session).refs(
        provider_id, [report.external_id for report in reports]
    )
    owners = {external_id: ref[0] for external_id, ref in refs.items()}
    unmatched = [report for report in reports if report.external_id not in owners]
    known = [report for report in reports if report.external_id in owners]
    if not known:
        return unmatched
    known = await _whole_messages_only(session, provider_id, refs, known)
    # Plain receipts (the bulk of the traffic) go through the row path; engagement
    # reports (opened, bounced...) through the object path.
    plain = [report for report in known if report.event is None]
    if plain:
        await _apply_receipts(session, owners, plain)
    engaged = [report for report in known if report.event is not None]
    if engaged:
        repo = MessageRepository(session)
        ids = sorted({owners[report.external_id] for report in engaged})
        found = await session.scalars(select(Message).where(Message.id.in_(ids)))
        messages = {message.id: message for message in found}
        seen = await repo.seen_statuses(list(messages))
        for report in engaged:
            message = messages[owners[report.external_id]]
            await _apply(session, message, report, seen[message.id])
    return unmatched


async def _whole_messages_only(
    session: AsyncSession,
    provider_id: str,
    refs: dict[str, tuple[str, int | None]],
    reports: Sequence[StatusReport],
) -> list[StatusReport]:
    """A message sent in several parts (a long SMS) is delivered when every part is:
    a part's ``delivered`` is kept as a ``part_delivered`` event until the last one
    comes, which then delivers the message. A part that is not delivered makes the
    message ``undelivered`` at once (those reports pass through)."""
    delivered = [
        report
        for report in reports
        if report.status == Status.DELIVERED
        and report.event is None
        and refs[report.external_id][1] is not None
    ]
    if not delivered:
        return list(reports)
    owners = {external_id: ref[0] for external_id, ref in refs.items()}
    counts = await RefRepository(session).part_counts(
        provider_id, [owners[report.external_id] for report in delivered]
    )
    parts = {
        report.external_id: (int(refs[report.external_id][1] or 0), counts[owner])
        for report in delivered
        if counts.get(owner := owners[report.external_id], 0) > 1
    }
    if not parts:
        return list(reports)
    message_ids = sorted({owners[external_id] for external_id in parts})
    done: dict[str, set[int]] = {message_id: set() for message_id in message_ids}
    recorded = await session.execute(
        select(MessageEvent.message_id, MessageEvent.detail).where(
            MessageEvent.message_id.in_(message_ids), MessageEvent.kind == "part_delivered"
        )
    )
    for message_id, detail in recorded:
        done[message_id].add(int((detail or {}).get("part", 0)))
    passed: list[StatusReport] = []
    for report in reports:
        if report not in delivered or report.external_id not in parts:
            passed.append(report)
            continue
        part, total = parts[report.external_id]
        message_id = owners[report.external_id]
        if part in done[message_id]:
            continue  # this part's receipt again
        done[message_id].add(part)
        session.add(
            MessageEvent(
                message_id=message_id,
                status=Status.DELIVERED.value,
                at=report.at,
                applied=False,
                kind="part_delivered",
                detail={"part": part, "parts": total, "providerId": provider_id},
            )
        )
        if len(done[message_id]) >= total:
            passed.append(report)
    return passed


# What a receipt's status change reads and writes of its message's row: the columns
# status_writer.write_rows may write (on PostgreSQL it writes them all) and what
# plan_rows and a refund read besides. Read so when no webhook endpoint is enabled
# (no change has an outbox event, whose payload is the whole message): none of them
# JSON, half the columns, the rows cost about half as much to read.
RECEIPT_KEYS = ("id", "account_id", "environment", "credits", *WRITTEN)


async def _apply_receipts(
    session: AsyncSession, owners: dict[str, str], reports: Sequence[StatusReport]
) -> None:
    ids = sorted({owners[report.external_id] for report in reports})
    subscriptions: Subscriptions | None = None
    if await status_writer.endpoints_enabled(session):
        found = await load_rows(session, ids)
    else:
        found = await load_rows(session, ids, keys=RECEIPT_KEYS)
        subscriptions = Subscriptions.of_endpoints(())
    # A report that moves its message on cannot repeat a recorded status (statuses
    # only move forward, and an event that did not apply was met by a status as far
    # on, or further): only the others' messages are looked up, to drop repeats.
    repeats = {
        row["id"]
        for report in reports
        if (row := found.get(owners[report.external_id])) is not None
        and not applies(row["status"], report.status)
    }
    seen = await MessageRepository(session).seen_statuses(sorted(repeats))
    changes: list[RowChange] = []
    for report in reports:
        row = found.get(owners[report.external_id])
        if row is None:
            continue
        # A duplicate receipt is dropped, not recorded again (one in this batch too).
        statuses = seen.setdefault(row["id"], set())
        if report.status in statuses:
            continue
        statuses.add(report.status)
        values = (
            {"error_code": report.error_code, "error_message": report.error_message}
            if report.error_code is not None
            else {}
        )
        # What the network said beside the status (WhatsApp's pricing) stays in the event.
        changes.append(
            RowChange(row, report.status, report.at, values=values, detail=report.detail or None)
        )
    await status_writer.change_rows(session, changes, subscriptions)


async def record_inbound(
    session: AsyncSession,
    inbound: InboundMessage,
    *,
    account_id: str,
    environment: Environment,
    provider_kind: str,
    provider_id: str | None,
) -> Message:
    """Record a contact's message; STOP and START change its SMS opt-out."""
    sender = inbound.sender
    if inbound.channel == "whatsapp":
        # WhatsApp names a contact by user id, phone or both: the conversation's address.
        sender = await remember(
            session, account_id, environment, seen_of(sender, inbound.content), inbound.at
        )
    message = Message(
        id=new_id("msg"),
        account_id=account_id,
        environment=environment.value,
        channel=inbound.channel,
        direction="inbound",
        to_address=inbound.recipient or "",
        from_address=sender,
        body=inbound.body,
        content=inbound.content,
        credits=0,
        attempts=0,
        provider=provider_kind,
        provider_id=provider_id,
        provider_message_id=inbound.external_id,
    )
    await status_writer.start(session, message, Status.RECEIVED, inbound.at)
    if inbound.channel == "sms":
        await _opt_out_keywords(session, inbound, message, account_id, environment)
    return message


async def record_contact_update(
    session: AsyncSession, update: ContactUpdate, *, account_id: str, environment: Environment
) -> None:
    """Record what a provider told of a WhatsApp contact: a phone and user id seen
    together on a status, or the contact's new number or user id (Meta's ``system``
    message), which fires ``contact.changed``. No message is stored: the contact
    did not write, so the window stays as it was."""
    if update.channel != "whatsapp":
        return
    if update.change is None:
        if update.phone and update.user_id:
            await learn(session, account_id, environment, update.phone, update.user_id, update.at)
        return
    changed = await change(
        session,
        account_id,
        environment,
        previous_phone=update.previous_phone,
        previous_user_id=update.previous_user_id,
        phone=update.phone,
        user_id=update.user_id,
        at=update.at,
    )
    if changed is None:
        log.info("WhatsApp %s for a contact never seen: nothing to update", update.change)
        return
    session.add(
        OutboxEvent.new(
            account_id=account_id,
            environment=environment.value,
            event_type="contact.changed",
            # A subject per contact keeps its changes delivered in order (ids are
            # at most 40 characters; a user id may be longer).
            subject_id="wac_" + hashlib.sha256(changed.address.encode()).hexdigest()[:32],
            payload={
                "channel": "whatsapp",
                "change": update.change,
                "chatId": chat_id(changed.address),
                "contact": changed.address,
                "phone": changed.phone,
                "userId": changed.user_id,
                "previousPhone": changed.previous_phone,
                "previousUserId": changed.previous_user_id,
                "body": update.body,
                "providerMessageId": update.external_id,
                "at": update.at.isoformat(),
            },
            at=update.at,
        )
    )


async def _apply(
    session: AsyncSession, message: Message, report: StatusReport, seen: set[str]
) -> None:
    if report.recipient is not None:
        # Another recipient of the message (a Cc's bounce): its event, not its status.
        if report.event is not None:
            await _email_event(session, message, report, report.event, seen)
        return
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
        await _email_event(session, message, report, report.event, seen)


async def _email_event(
    session: AsyncSession, message: Message, report: StatusReport, event: str, seen: set[str]
) -> None:
    detail = dict(report.detail)
    if report.error_message:
        detail["error"] = report.error_message
    address = report.recipient or message.to_address
    if event in PER_RECIPIENT:
        # Once per recipient: the message's own bounce and each Cc's are different.
        if await _recorded_for(session, message, event, address):
            return
        detail["recipient"] = address
        recorded = _record_event(session, message, event, report.at, detail, seen, checked=True)
    else:
        recorded = _record_event(session, message, event, report.at, detail, seen)
    # Only a hard bounce (undelivered, for its recipient) suppresses; soft ones retry.
    hard = event != "bounced" or report.status == Status.UNDELIVERED
    if recorded and hard:
        await _suppress(session, message, event, report.at, address)


async def _recorded_for(session: AsyncSession, message: Message, event: str, address: str) -> bool:
    """Whether the message already has ``event`` for ``address`` (an event without a
    recipient is its own recipient's). Bounces are rare: one small query each."""
    details = await session.scalars(
        select(MessageEvent.detail).where(
            MessageEvent.message_id == message.id, MessageEvent.kind == event
        )
    )
    wanted = address.strip().lower()
    return any(
        str((detail or {}).get("recipient") or message.to_address).strip().lower() == wanted
        for detail in details
    )


async def _suppress(
    session: AsyncSession, message: Message, event: str, at: datetime, address: str | None = None
) -> None:
    """A hard bounce, complaint or unsubscribe puts the recipient (the message's own,
    or the Cc that bounced) on the suppression list, in the same transaction as its
    event (database calls only)."""
    reason = SUPPRESSING_EVENTS.get(event)
    address = address or message.to_address
    if reason is None or message.channel != "email" or not address:
        return
    await SuppressionRepository(session).add(
        message.account_id,
        message.environment,
        address,
        reason=reason,
        message_id=message.id,
        at=at,
    )


def _record_event(
    session: AsyncSession,
    message: Message,
    event: str,
    at: datetime,
    detail: dict[str, Any],
    seen: set[str],
    *,
    checked: bool = False,
) -> bool:
    """Add an engagement event row and its outbox row; False when dropped (a repeat
    of a once-only event; ``checked``: the caller has ruled that out per recipient).
    The first open and the first click of a message carry ``"first": true``;
    repeats are recorded without it."""
    if event in seen:
        if event in ONCE and not checked:
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


async def _opt_out_keywords(
    session: AsyncSession,
    inbound: InboundMessage,
    message: Message,
    account_id: str,
    environment: Environment,
) -> None:
    word = keyword(inbound.body)
    if word is None:
        return
    optouts = OptOutRepository(session)
    if word == "start":
        await optouts.opt_in(account_id, environment, "sms", inbound.sender)
        return
    added = await optouts.opt_out(
        account_id, environment, "sms", inbound.sender, reason="stop", at=inbound.at
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


class InboundProcessor:
    """What arrives without a provider's inbox: our tracking hits, and the sandbox's
    simulated contacts writing in."""

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
            if _record_event(session, message, event, at, dict(detail or {}), seen):
                await _suppress(session, message, event, at)
            return True

        found = await self._writer.submit(apply)
        if found:
            self._on_committed()
        return found

    async def receive(
        self, inbound: InboundMessage, *, account_id: str, environment: Environment
    ) -> Message:
        """Record a simulated contact's message (``POST /api/v4/sandbox/inbound``)."""

        async def record(session: AsyncSession) -> Message:
            return await record_inbound(
                session,
                inbound,
                account_id=account_id,
                environment=environment,
                provider_kind="sandbox",
                provider_id=None,
            )

        message = await self._writer.submit(record)
        self._on_committed()
        return message
