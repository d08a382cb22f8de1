"""The delivery dispatcher: claims due messages, submits them, records verdicts.

The ``messages`` table is the queue. A claim takes a lease on due rows by
setting ``lease_owner`` and moving ``next_attempt_at`` to the lease's end, so a
dispatcher that dies leaves its rows due again when their leases run out. Each
claimed message is submitted to its provider under a per-channel concurrency
limit; the verdicts are recorded in batches, one transaction each, by
:mod:`tidings.messages.verdict_recorder` (with :mod:`tidings.messages.verdicts`).

Single sends are claimed before batch messages, and batches may use only a
share of each channel's concurrency, so single sends keep their latency while
a batch drains; batch messages go at their providers' pace
(:mod:`tidings.bulk.pacing`). Messages travel as plain rows
(:mod:`tidings.messages.rows`) and verdicts are written with multi-row
statements, so a dispatcher moves thousands a second.

Claims and verdicts go through the process's group committer with every other
write, so a burst of sends costs a few transactions rather than several each,
and SQLite never sees two writers compete for its lock. On PostgreSQL (given
``claim_sessions``) single sends are claimed in a transaction of their own
instead, so the claim never waits behind other writes, and one that only took
leases commits without waiting for its flush (:mod:`tidings.messages.queue` says
why that is safe); batch messages, when any wait, are then claimed as before.
On a clean stop, the dispatcher stops claiming, lets in-flight submissions
finish for a grace period, and hands back the leases it did not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.bulk.pacing import Rate, Schedule, SendGate, rates_for
from tidings.bulk.shared import SharedContents
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.db.group_commit import GroupCommitter
from tidings.messages import queue, status_writer
from tidings.messages.models import Message
from tidings.messages.precedence import SendPrecedence
from tidings.messages.repository import MessageRepository
from tidings.messages.rows import COLUMNS, Row
from tidings.messages.status import Status
from tidings.messages.status_writer import RowChange
from tidings.messages.verdict_recorder import VerdictRecorder
from tidings.messages.verdicts import Verdict, VerdictWriter
from tidings.messages.waiters import VerdictWaiters
from tidings.providers.base import OutboundMessage
from tidings.providers.directory import NoProvider, ProviderDirectory, Route
from tidings.providers.errors import (
    ConfigurationError,
    DeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from tidings.providers.metrics import ProviderMetrics
from tidings.providers.pacing import ProviderPacer, provider_rate
from tidings.settings import BulkSettings, DeliverySettings

log = logging.getLogger("tidings.dispatcher")

# What a submission came to, for its provider's circuit and health.
Outcome = tuple[Route, DeliveryError | None]


@dataclass(frozen=True, slots=True)
class Lease:
    owner: str
    until: datetime


@dataclass(slots=True)
class Job:
    """A leased message on its way to its provider."""

    row: Row
    send_at: float | None = None
    rates: list[Rate] = field(default_factory=list)

    @property
    def batch(self) -> bool:
        return self.row["batch_id"] is not None


_KEYS = tuple(column.key for column in COLUMNS)
# By value: the enum's own lookup cost about a microsecond a submission.
_ENVIRONMENTS = {environment.value: environment for environment in Environment}


def row_of(message: Message) -> Row:
    """The message's columns as a row. A message the API just stored is transient
    (inserted with Core, see :func:`status_writer.start`): its values are in its
    ``__dict__``, and a column it never set reads as None, as through the ORM's
    attributes, which cost about 20 µs for the whole row. Any other (persistent,
    maybe expired) object is read through them."""
    if inspect(message).key is None:
        values = message.__dict__
        return {key: values.get(key) for key in _KEYS}
    return {key: getattr(message, key) for key in _KEYS}


class Dispatcher:
    def __init__(
        self,
        *,
        writer: GroupCommitter,
        clock: Clock,
        settings: DeliverySettings,
        providers: ProviderDirectory,
        waiters: VerdictWaiters,
        verdict_channel: str | None = None,
        bulk: BulkSettings | None = None,
        metrics: ProviderMetrics | None = None,
        on_committed: Callable[[], None] = lambda: None,
        on_reports: Callable[[float], None] = lambda due_in: None,
        claim_sessions: async_sessionmaker[AsyncSession] | None = None,
        precedence: SendPrecedence | None = None,
    ) -> None:
        self._precedence = precedence
        self._claim_sessions = claim_sessions
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._bulk = bulk or BulkSettings()
        self._providers = providers
        self._metrics = metrics or ProviderMetrics()
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(3)}"
        self._capacity = {
            "whatsapp": settings.whatsapp_concurrency,
            "sms": settings.sms_concurrency,
            "email": settings.email_concurrency,
        }
        self._batch_capacity = {
            channel: max(1, int(capacity * self._bulk.share_of_concurrency))
            for channel, capacity in self._capacity.items()
        }
        self._slots = {ch: asyncio.Semaphore(n) for ch, n in self._capacity.items()}
        self._in_flight = dict.fromkeys(self._capacity, 0)
        self._in_flight_batch = dict.fromkeys(self._capacity, 0)
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._wake = asyncio.Event()
        self._gate = SendGate()
        self._shared = SharedContents()
        self._pacer = ProviderPacer(writer)
        self._provider_slots: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._recorder = VerdictRecorder(
            writer=writer,
            verdict_writer=VerdictWriter(
                clock=clock,
                settings=settings,
                waiters=waiters,
                worker=self.owner,
                channel=verdict_channel,
            ),
            waiters=waiters,
            on_reports=on_reports,
            on_committed=on_committed,
            sessions=claim_sessions,
        )
        self._stopping = False
        # Whether due rows may be waiting for capacity: a claim came back full, or
        # capacity ran out. Only then does finishing a submission look for more;
        # otherwise wake-ups and the poll interval do.
        self._backlog = True
        # Set when pacing held batch messages back: look again when slots free up.
        self._paced = False
        self._claims = 0
        self.submissions = 0
        self.adoptions = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        recorder = asyncio.create_task(self._recorder.run(), name="verdict-recorder")
        try:
            while not self._stopping:
                # Cleared before the claim, not after: a wake-up that comes while
                # claiming (a submission finished) must not be lost.
                self._wake.clear()
                claim_batch = await self._give_sends_precedence()
                if self._stopping:
                    break
                jobs = await self._claim_safely(claim_batch)
                for job in jobs:
                    self._start(job)
                if jobs and self._backlog and self._free_channels() and not self._paced:
                    continue
                await self._sleep()
        finally:
            await self._drain()
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._recorder.flush()

    async def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def _give_sends_precedence(self) -> int:
        """How many messages the next claim may take. While sends take precedence
        (messages/precedence.py), a small batch after a pause: the floor delivery
        keeps; else a full one."""
        if self._precedence is None or not self._precedence.sample():
            return self._settings.claim_batch
        # Not cut short by wake-ups: each send that yields wakes the dispatcher.
        await asyncio.sleep(self._settings.sends_first_pause_seconds)
        return self._settings.sends_first_claim_batch

    def _free_channels(self) -> list[str]:
        return [ch for ch, cap in self._capacity.items() if self._in_flight[ch] < cap]

    def _batch_channels(self) -> list[str]:
        return [
            ch
            for ch, cap in self._batch_capacity.items()
            if self._in_flight_batch[ch] < cap and self._in_flight[ch] < self._capacity[ch]
        ]

    async def _sleep(self) -> None:
        timeout = self._settings.poll_interval_seconds
        if self._paced:
            # The pace frees a slot every interval: come back within the horizon.
            timeout = min(timeout, 0.1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _claim_safely(self, claim_batch: int) -> list[Job]:
        try:
            return await self._claim(claim_batch)
        except Exception:
            log.exception("claiming due messages failed; trying again shortly")
            await asyncio.sleep(self._settings.poll_interval_seconds)
            return []

    async def _claim(self, claim_batch: int) -> list[Job]:
        channels = self._free_channels()
        free = sum(self._capacity[ch] - self._in_flight[ch] for ch in channels)
        limit = min(claim_batch, free)
        if limit <= 0:
            self._backlog = True
            return []
        batch_channels = self._batch_channels()
        batch_free = sum(
            self._batch_capacity[ch] - self._in_flight_batch[ch] for ch in batch_channels
        )
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._settings.lease_seconds)
        # A lease names this dispatcher and this claim, so a verdict that comes back
        # after its lease ran out (and the row was claimed again) is recognised.
        self._claims += 1
        owner = f"{self.owner}:{self._claims}"
        bulk = self._bulk

        taken: list[Row] = []
        single_limit = limit
        if self._claim_sessions is not None:
            # PostgreSQL: single sends claimed by one statement that is its own
            # transaction (it need not wait behind the group's other writes, nor for
            # its flush). The batch lane keeps the group's transaction: its pace rows
            # are also written by the verdicts' slow-downs, one writer at a time.
            taken, batch_waiting = await queue.claim_singles_alone(
                self._claim_sessions,
                now=now,
                channels=channels,
                limit=limit,
                owner=owner,
                until=lease_until,
                batch_channels=batch_channels,
                batch_room=min(limit, batch_free),
            )
            single_limit = 0
            async with self._claim_sessions() as session:
                await self._shared.resolve_rows(session, taken)  # no query without a reference
            scheduled = [
                RowChange(row, Status.QUEUED, now) for row in taken if row["status"] == "scheduled"
            ]
            if scheduled:
                # A status change, with its event, waits for its flush as every write.
                await self._writer.submit(lambda s: status_writer.change_rows(s, scheduled))
            if not batch_waiting:
                self._backlog = min(limit - len(taken), batch_free) <= 0
                self._paced = False
                return [Job(row) for row in taken]

        async def claim(session: AsyncSession) -> tuple[list[Job], bool, bool]:
            singles = await queue.due(
                session, now=now, channels=channels, limit=single_limit, batch=False
            )
            batch_limit = min(limit - len(taken) - len(singles), batch_free)
            candidates = await queue.due(
                session, now=now, channels=batch_channels, limit=batch_limit, batch=True
            )
            plans: dict[str, tuple[float | None, list[Rate]]] = {
                single.id: (None, []) for single in singles
            }
            held = False
            if candidates:
                schedule = Schedule(session, time.time())
                rates = {
                    c.id: rates_for(bulk, c.account_id, c.environment, c.channel)
                    for c in candidates
                }
                await schedule.load([rate.key for found in rates.values() for rate in found])
                for candidate in candidates:
                    send_at = schedule.take(rates[candidate.id])
                    if send_at is None:
                        held = True
                        continue
                    plans[candidate.id] = (send_at, rates[candidate.id])
            rows = await queue.lease(session, list(plans), owner=owner, until=lease_until)
            # A batch's common content (attachments, an unvaried body) is stored once
            # and put back into each of its messages here, before a provider sees it.
            await self._shared.resolve_rows(session, rows)
            scheduled = [
                RowChange(row, Status.QUEUED, now) for row in rows if row["status"] == "scheduled"
            ]
            if scheduled:
                await status_writer.change_rows(session, scheduled)
            jobs = [Job(row, *plans[row["id"]]) for row in rows]
            # More may be due: capacity, not the queue, ended this claim.
            found = len(taken) + len(singles)
            full = found >= limit or batch_free <= 0 or len(candidates) >= batch_limit
            return jobs, full, held

        try:
            jobs, full, held = await self._writer.submit(claim)
        except Exception:
            if not taken:
                raise
            # The single sends are leased already: they go; the batch lane is tried again.
            log.exception("claiming batch messages failed; trying again shortly")
            jobs, full, held = [], True, False
        self._backlog = full or held
        self._paced = held
        return [Job(row) for row in taken] + jobs

    def reserve(self, channel: str) -> Lease | None:
        """A slot for a message this process is about to store: the message is then
        written already leased to this dispatcher, and handed over by :meth:`adopt`
        after the commit, which saves a claim. None when this dispatcher is full."""
        if self._stopping or self._in_flight.get(channel, 0) >= self._capacity.get(channel, 0):
            return None
        self._in_flight[channel] += 1
        self._claims += 1
        until = self._clock.now() + timedelta(seconds=self._settings.lease_seconds)
        return Lease(f"{self.owner}:{self._claims}", until)

    def release_reservation(self, channel: str) -> None:
        self._in_flight[channel] -= 1
        if self._backlog:
            self.wake()

    def adopt(self, message: Message) -> None:
        """Deliver a message stored with a lease from :meth:`reserve`."""
        self.adoptions += 1
        self._launch(Job(row_of(message)))

    def _start(self, job: Job) -> None:
        self._in_flight[job.row["channel"]] += 1
        self._launch(job)

    def _launch(self, job: Job) -> None:
        if job.batch:
            self._in_flight_batch[job.row["channel"]] += 1
        task = asyncio.create_task(self._deliver(job), name=f"deliver-{job.row['id']}")
        self._tasks[task] = job.row["id"]
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    async def _deliver(self, job: Job) -> None:
        channel = job.row["channel"]
        lease = job.row["lease_owner"] or self.owner
        try:
            async with self._slots[channel]:
                outcome: Outcome | None = None
                try:
                    verdict, outcome = await self._submit(job, lease)
                except Exception as error:
                    # Routing itself failed (the database, say): the message is tried
                    # again later, without using an attempt; never left to its lease.
                    log.exception("routing %s failed", job.row["id"])
                    verdict = Verdict(
                        job.row["id"],
                        lease,
                        error=RetryableDeliveryError("routing_failed", type(error).__name__),
                        spends_attempt=False,
                    )
                self._recorder.put(verdict)
                if outcome is not None:
                    # After the verdict is queued: noting a provider's new health waits
                    # for a commit, which the message's receipt must not overtake.
                    try:
                        await self._providers.outcome(*outcome)
                    except Exception:
                        log.exception("noting what %s came to failed", outcome[0].id)
        finally:
            self._in_flight[channel] -= 1
            if job.batch:
                self._in_flight_batch[channel] -= 1
            # A claim made while this channel was full looked at the others only, and
            # may have found none due: its rows wait for this slot, so look again.
            freed = self._in_flight[channel] == self._capacity[channel] - 1
            if self._backlog or freed:
                self.wake()

    async def _submit(self, job: Job, lease: str) -> tuple[Verdict, Outcome | None]:
        """The attempt's verdict, and what the provider's circuit and health are to
        be told of it (none when no provider was chosen)."""
        row = job.row
        outbound = OutboundMessage(
            id=row["id"],
            account_id=row["account_id"],
            environment=_ENVIRONMENTS.get(row["environment"]) or Environment(row["environment"]),
            channel=row["channel"],
            to=row["to_address"],
            sender=row["from_address"],
            body=row["body"],
            content=row["content"] or {},
            attempt=row["attempts"],
            segments=row["segments"],
            encoding=row["encoding"],
        )
        environment = outbound.environment
        retried_after = row["provider_id"] if row["attempts"] > 1 else None
        choice = await self._providers.choose(
            row["account_id"], environment, row["channel"], after_failure_of=retried_after
        )
        if isinstance(choice, NoProvider):
            verdict = Verdict(
                row["id"],
                lease,
                error=RetryableDeliveryError(
                    choice.code, choice.reason, retry_after=choice.retry_in
                ),
                spends_attempt=False,
            )
            return verdict, None
        route, provider = choice.route, choice.provider
        rates = job.rates
        if job.send_at is not None:
            await self._gate.wait(job.send_at, job.rates)
        if choice.rate:
            rate = provider_rate(route.id, choice.rate)
            rates = [*rates, rate]
            # The shared schedule's slot, then this process's one-second window.
            await self._gate.wait(await self._pacer.next_slot(rate), [rate])
        started = time.perf_counter()
        try:
            self.submissions += 1
            async with self._provider_slot(route.id, choice.concurrency):
                async with asyncio.timeout(self._settings.send_timeout_seconds):
                    accepted = await provider.send(outbound)
        except TimeoutError:
            error: DeliveryError = RetryableDeliveryError(
                "provider_timeout",
                f"{route.name} did not answer within {self._settings.send_timeout_seconds:g} s.",
            )
        except DeliveryError as caught:
            error = caught
        except Exception as unexpected:
            log.exception("provider %s failed on %s", route.id, row["id"])
            error = RetryableDeliveryError("provider_error", type(unexpected).__name__)
        else:
            self._metrics.observe(route, "accepted", time.perf_counter() - started)
            verdict = Verdict(
                row["id"],
                lease,
                provider=route.kind,
                provider_id=route.id,
                refs=accepted.refs,
                reports=accepted.reports,
            )
            return verdict, (route, None)
        self._metrics.observe(route, error.code, time.perf_counter() - started)
        verdict = Verdict(
            row["id"],
            lease,
            provider=route.kind,
            provider_id=route.id,
            error=error,
            rates=tuple(rates),
            spends_attempt=not isinstance(error, (ConfigurationError, ThrottledError)),
        )
        return verdict, (route, error)

    def _provider_slot(
        self, provider_id: str, concurrency: int | None
    ) -> contextlib.AbstractAsyncContextManager[object]:
        """At most ``concurrency`` submissions to one provider at once, here."""
        if not concurrency:
            return contextlib.nullcontext()
        slots = self._provider_slots.get(provider_id)
        if slots is None or slots[0] != concurrency:
            slots = self._provider_slots[provider_id] = (
                concurrency,
                asyncio.Semaphore(concurrency),
            )
        return slots[1]

    async def verdicts_recorded(self) -> None:
        """Return once every verdict queued so far is recorded (see
        :meth:`VerdictRecorder.recorded`)."""
        await self._recorder.recorded()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(
            set(self._tasks), timeout=self._settings.shutdown_grace_seconds
        )
        unfinished = [self._tasks[task] for task in pending if task in self._tasks]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)
        # A cancelled submission may or may not have reached its provider; handing the
        # lease back makes it due at once on the next start (at least once, never lost).
        if unfinished:
            now = self._clock.now()

            async def release(session: AsyncSession) -> None:
                await MessageRepository(session).release(self.owner, unfinished, now)

            await self._writer.submit(release)
