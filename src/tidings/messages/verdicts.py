"""Recording what providers answered: one transaction per batch of verdicts.

- accepted: ``sent``, with every id the provider gave it written to
  ``provider_refs`` (reports find their message through them);
- retryable error: back in the queue after a backoff, until ``max_attempts``;
- no attempt used ("slow down" answers, a provider whose credentials were refused,
  no provider able to take it now): back in the queue, the attempt given back;
  such waiting is bounded by ``max_pending_seconds`` from the message's creation,
  after which it ends ``failed`` (``provider_unavailable``), so nothing waits for ever;
- permanent error (or attempts used up): ``failed`` with the provider's reason.

On PostgreSQL (the scale-out worker) the transaction is two statements
(:mod:`tidings.messages.verdict_statement`): the rows locked with their accounts'
webhook endpoints and the single sends' events, then every write and the
notification of the single sends that left the queue, each with the answer a
waiting request shows (:func:`tidings.messages.verdict_feed.answer_payloads`):
the API process whose request waits for one hears of it, answer included, when
the verdict commits. On SQLite the writes go through the Core paths.

Every attempt names the provider that took it (``provider_id`` on the row, and
``providerId`` in a retry event's detail).

A verdict names the lease it was given under; one that comes back after its
lease ran out (and the row was claimed again) still moves the status machine,
but leaves the queue fields to the new holder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.pacing import Rate, slow_down
from tidings.bulk.repository import BatchRepository
from tidings.core.clock import Clock
from tidings.messages import queue, status_writer, verdict_statement
from tidings.messages.backoff import retry_delay
from tidings.messages.models import MessageEvent
from tidings.messages.rows import KEYS, Row, answer, events_of, load_rows
from tidings.messages.status import PENDING, Status
from tidings.messages.status_writer import WRITTEN, RowChange
from tidings.messages.verdict_feed import answer_payloads
from tidings.messages.waiters import Answer, VerdictWaiters
from tidings.providers.base import ProviderRef, RawReport
from tidings.providers.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from tidings.providers.repository import (
    INBOX_COLUMNS,
    REF_COLUMNS,
    InboxRepository,
    RefRepository,
    inbox_values,
)
from tidings.settings import DeliverySettings
from tidings.webhooks.subscriptions import Subscriptions

# What recording a verdict reads and writes of its message's row: the columns
# status_writer.write_rows may write, and what the verdict, its retry, status change,
# refund and batch read besides. Read so for a message no request waits for when no
# webhook endpoint is enabled (no answer nor outbox payload needs the whole row):
# without its body, content and addresses the row costs about a third less to read.
VERDICT_KEYS = (
    "id",
    "account_id",
    "environment",
    "batch_id",
    "credits",
    "attempts",
    "created_at",
    *WRITTEN,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    message_id: str
    lease: str
    # The kind and the provider that took (or refused) this attempt.
    provider: str | None = None
    provider_id: str | None = None
    refs: tuple[ProviderRef, ...] = ()
    # Reports the provider handed over with its acceptance (stored in the inbox here).
    reports: tuple[RawReport, ...] = ()
    error: DeliveryError | None = None
    rates: tuple[Rate, ...] = ()
    # False when the attempt is given back (slow down, credentials, no provider now).
    spends_attempt: bool = True

    @property
    def provider_message_id(self) -> str | None:
        return self.refs[0].external_id if self.refs else None


class VerdictWriter:
    def __init__(
        self,
        *,
        clock: Clock,
        settings: DeliverySettings,
        waiters: VerdictWaiters,
        worker: str,
        channel: str | None = None,
    ) -> None:
        self._channel = channel
        self._clock = clock
        self._settings = settings
        self._waiters = waiters
        self._worker = worker

    async def apply(
        self, session: AsyncSession, batch: list[Verdict]
    ) -> dict[str, dict[str, object] | None]:
        """Record the verdicts; the messages that left the queue (with the answer a
        waiting request shows, for those a request waits for)."""
        at = self._clock.now()
        ids = [verdict.message_id for verdict in batch]
        postgres = session.get_bind().dialect.name == "postgresql"
        locked: verdict_statement.Locked | None = None
        if postgres:
            # The rows locked, the webhook subscriptions and the single sends' events
            # so far, in one statement.
            locked = await verdict_statement.locked_rows(session, ids)
            rows = locked.rows
            subscriptions = None
        else:
            rows, subscriptions = await self._rows(session, ids)
        changes: list[RowChange] = []
        retries: list[dict[str, Any]] = []
        retry_events: list[MessageEvent] = []
        slowed: set[str] = set()
        # The refs (REF_COLUMNS) and reports to store, as tuples: SQLite's driver takes
        # them as they are (dictionaries only for the PostgreSQL statement).
        refs: list[tuple[Any, ...]] = []
        reports: list[tuple[str, RawReport]] = []
        # One detail for the batch's "sent" events (never changed once made): each
        # distinct object is serialised once per statement.
        sent_detail = {"worker": self._worker}
        for verdict in batch:
            row = rows.get(verdict.message_id)
            if row is None:
                continue
            accepted = {
                "provider": verdict.provider,
                "provider_id": verdict.provider_id,
                "provider_message_id": verdict.provider_message_id,
            }
            if verdict.error is None and verdict.provider_id is not None:
                provider_id = verdict.provider_id
                refs.extend(
                    (provider_id, ref.external_id, row["id"], ref.part, ref.recipient, at)
                    for ref in verdict.refs
                )
                reports.extend((provider_id, report) for report in verdict.reports)
            if row["lease_owner"] != verdict.lease:
                # Our lease ran out and someone else holds the message now: the status
                # machine still takes a "sent", but the queue fields are theirs.
                if verdict.error is None:
                    changes.append(
                        RowChange(
                            row,
                            Status.SENT,
                            at,
                            values=accepted,
                            detail={"worker": self._worker, "late": True},
                            values_always=True,
                            settles=False,
                        )
                    )
                continue
            error = verdict.error
            if error is None:
                accepted["lease_owner"] = None
                changes.append(RowChange(row, Status.SENT, at, values=accepted, detail=sent_detail))
                continue
            if isinstance(error, ThrottledError):
                slowed.update(
                    rate.key for rate in verdict.rates if rate.key.startswith("provider:")
                )
            retry = self._retry(row, verdict, error, at)
            if retry is not None:
                retries.append(retry)
                if not verdict.spends_attempt and row["error_code"] == error.code:
                    # Still waiting for the same reason (slow down, no provider now):
                    # the first such event says it; one every few seconds for a day
                    # would bury the message's history.
                    continue
                retry_events.append(
                    MessageEvent(
                        message_id=row["id"],
                        status=row["status"],
                        at=at,
                        applied=False,
                        kind="retry",
                        detail={
                            "attempt": row["attempts"],
                            "providerId": verdict.provider_id,
                            "error": {"code": error.code, "message": error.message},
                            "retryAt": retry["next_attempt_at"].isoformat(),
                        },
                    )
                )
                continue
            code = (
                error.code if isinstance(error, PermanentDeliveryError) else "provider_unavailable"
            )
            changes.append(
                RowChange(
                    row,
                    Status.FAILED,
                    at,
                    values={
                        "lease_owner": None,
                        "provider_id": verdict.provider_id or row["provider_id"],
                        "error_code": code,
                        "error_message": error.message,
                    },
                )
            )
        answers: dict[str, Answer | None] = {}
        stored = inbox_values(reports, at)
        if locked is not None:
            applied, answers = await self._write_at_once(
                session,
                locked,
                changes,
                [dict(zip(REF_COLUMNS, ref, strict=True)) for ref in refs],
                [dict(zip(INBOX_COLUMNS, report, strict=True)) for report in stored],
                retries,
                retry_events,
            )
        else:
            # The ids first: a receipt applied right after this commit finds its message.
            await RefRepository(session).add_values(refs)
            await InboxRepository(session).store_values(stored)
            applied = await status_writer.change_rows(session, changes, subscriptions)
            await queue.requeue(session, retries)
            session.add_all(retry_events)
        if slowed:
            await slow_down(session, sorted(slowed), time.time())
        started = {
            change.row["batch_id"]
            for change in applied
            if change.new == Status.SENT and change.row["batch_id"] is not None
        }
        await BatchRepository(session).mark_started(sorted(started), at)
        await session.flush()
        settled = [change.row for change in applied if change.settles]
        if locked is not None:
            return {
                row["id"]: answers.get(row["id"]) if self._waiters.waiting(row["id"]) else None
                for row in settled
            }
        return await self._answers(session, settled)

    async def _write_at_once(
        self,
        session: AsyncSession,
        locked: verdict_statement.Locked,
        changes: list[RowChange],
        refs: list[dict[str, Any]],
        reports: list[dict[str, Any]],
        retries: list[dict[str, Any]],
        retry_events: list[MessageEvent],
    ) -> tuple[list[RowChange], dict[str, Answer | None]]:
        """PostgreSQL: the refs, reports, status changes (events, outbox rows),
        retries and the notification in one statement
        (:mod:`tidings.messages.verdict_statement`); credits given back after it.
        The changes that applied, and the answers of the single sends among them
        (None while one is still pending)."""
        plan = status_writer.plan_rows(changes, locked.subscriptions)
        applied = [change for change in changes if change.changed]
        retried = []
        for retry in retries:
            row = locked.rows[retry["id"]]
            row.update(retry)
            row["lease_owner"] = None
            retried.append(row)
        # A batch's messages are not waited for; a late "sent" may be. The answer goes
        # with the notification, so the waiting request's process need not read it.
        answers: dict[str, Answer | None] = {}
        for change in applied:
            row = change.row
            if row["batch_id"] is not None:
                continue
            answers[row["id"]] = (
                None
                if row["status"] in PENDING
                else answer(
                    row,
                    [*locked.events.get(row["id"], []), (change.new.value, change.at, True, None)],
                )
            )
        writes = verdict_statement.Writes(
            plan=plan,
            refs=refs,
            reports=reports,
            retried=retried,
            events=[
                (event.message_id, event.status, event.at, event.applied, event.kind, event.detail)
                for event in retry_events
            ],
            payloads=answer_payloads(answers) if self._channel is not None else [],
        )
        await verdict_statement.write(session, writes, self._channel)
        for row in plan.refunds:
            await status_writer.refund(session, row)
        return applied, answers

    async def _rows(
        self, session: AsyncSession, ids: list[str]
    ) -> tuple[dict[str, Row], Subscriptions | None]:
        """SQLite: the messages' rows, whole for those a request waits for (their
        answers) or when a webhook endpoint is enabled (the outbox events' payloads),
        the others narrowed to ``VERDICT_KEYS``; and the subscriptions when known to
        be none (None: :func:`status_writer.change_rows` reads them)."""
        narrow = [message_id for message_id in ids if not self._waiters.waiting(message_id)]
        if not narrow or await status_writer.endpoints_enabled(session):
            return await load_rows(session, ids), None
        rows = await load_rows(session, narrow, keys=VERDICT_KEYS)
        if len(narrow) < len(ids):
            rows.update(
                await load_rows(
                    session, [message_id for message_id in ids if self._waiters.waiting(message_id)]
                )
            )
        return rows, Subscriptions.of_endpoints(())

    def _retry(
        self, row: Row, verdict: Verdict, error: DeliveryError, at: datetime
    ) -> dict[str, Any] | None:
        """The row's retry, or None when it has to fail."""
        if not isinstance(error, RetryableDeliveryError) and verdict.spends_attempt:
            return None
        attempts = row["attempts"]
        if not verdict.spends_attempt or isinstance(error, ThrottledError):
            # "Slow down" or "no provider now" says nothing about the message: the
            # attempt is given back (and the pace, for paced batches, slows) — for
            # as long as the message may wait.
            waited = (at - row["created_at"]).total_seconds()
            if waited > self._settings.max_pending_seconds:
                return None
            attempts -= 1
        elif attempts >= self._settings.max_attempts:
            return None
        delay = retry_delay(
            max(attempts, 1),
            base=self._settings.backoff_base_seconds,
            maximum=self._settings.backoff_max_seconds,
            hint=getattr(error, "retry_after", None),
        )
        return {
            "id": row["id"],
            "next_attempt_at": at + timedelta(seconds=delay),
            "attempts": attempts,
            "provider_id": verdict.provider_id or row["provider_id"],
            "error_code": error.code,
            "error_message": error.message,
            "updated_at": at,
        }

    async def _answers(
        self, session: AsyncSession, settled: list[Row]
    ) -> dict[str, dict[str, object] | None]:
        answers: dict[str, dict[str, object] | None] = {row["id"]: None for row in settled}
        waited = [row for row in settled if self._waiters.waiting(row["id"])]
        if not waited:
            return answers
        if any(len(row) < len(KEYS) for row in waited):
            # A request began waiting for a message read narrowed (while a statement
            # ran): read whole now, as written.
            whole = await load_rows(session, [row["id"] for row in waited])
            waited = [whole.get(row["id"], row) for row in waited]
        events = await events_of(session, [row["id"] for row in waited])
        for row in waited:
            answers[row["id"]] = answer(row, events.get(row["id"], []))
        return answers
