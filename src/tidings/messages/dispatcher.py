"""The delivery dispatcher: claims due messages, submits them, records verdicts.

The ``messages`` table is the queue. A claim takes a lease on due rows by
setting ``lease_owner`` and moving ``next_attempt_at`` to the lease's end, so a
dispatcher that dies leaves its rows due again when their leases run out. Each
claimed message is submitted to its provider under a per-channel concurrency
limit; the verdict is recorded in one transaction with its events:

- accepted: ``sent`` (reports follow through the inbound path);
- retryable error: back in the queue after a backoff, until ``max_attempts``;
- permanent error (or attempts used up): ``failed`` with the provider's reason.

Claims and verdicts go through the process's group committer with every other
write, so a burst of sends costs a few transactions rather than several each,
and SQLite never sees two writers compete for its lock. On a clean stop, the
dispatcher stops claiming, lets in-flight submissions finish for a grace
period, and hands back the leases it did not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.base import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tidings.channels.registry import ProviderDirectory
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import ApiError
from tidings.db.group_commit import GroupCommitter
from tidings.messages import status_writer
from tidings.messages.backoff import retry_delay
from tidings.messages.models import Message, MessageEvent
from tidings.messages.repository import MessageRepository
from tidings.messages.schemas import message_out
from tidings.messages.status import Status
from tidings.messages.waiters import VerdictWaiters
from tidings.settings import DeliverySettings

log = logging.getLogger("tidings.dispatcher")


@dataclass(frozen=True, slots=True)
class Lease:
    owner: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    message_id: str
    lease: str
    provider: str | None = None
    provider_message_id: str | None = None
    error: DeliveryError | None = None


class Dispatcher:
    def __init__(
        self,
        *,
        writer: GroupCommitter,
        clock: Clock,
        settings: DeliverySettings,
        providers: ProviderDirectory,
        waiters: VerdictWaiters,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._providers = providers
        self._waiters = waiters
        self._on_committed = on_committed
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(3)}"
        self._capacity = {
            "whatsapp": settings.whatsapp_concurrency,
            "sms": settings.sms_concurrency,
            "email": settings.email_concurrency,
        }
        self._slots = {ch: asyncio.Semaphore(n) for ch, n in self._capacity.items()}
        self._in_flight = dict.fromkeys(self._capacity, 0)
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._wake = asyncio.Event()
        self._verdicts: asyncio.Queue[Verdict] = asyncio.Queue()
        self._stopping = False
        # Whether due rows may be waiting for capacity: a claim came back full, or
        # capacity ran out. Only then does finishing a submission look for more;
        # otherwise wake-ups and the poll interval do.
        self._backlog = True
        self._claims = 0
        self.submissions = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_verdicts(), name="verdict-recorder")
        try:
            while not self._stopping:
                claimed = await self._claim_safely()
                for message in claimed:
                    self._start(message)
                if self._backlog and self._free_channels():
                    continue
                await self._sleep()
        finally:
            await self._drain()
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._flush_verdicts()

    async def stop(self) -> None:
        self._stopping = True
        self.wake()

    def _free_channels(self) -> list[str]:
        return [ch for ch, cap in self._capacity.items() if self._in_flight[ch] < cap]

    async def _sleep(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)

    async def _claim_safely(self) -> list[Message]:
        try:
            return await self._claim()
        except Exception:
            log.exception("claiming due messages failed; trying again shortly")
            await asyncio.sleep(self._settings.poll_interval_seconds)
            return []

    async def _claim(self) -> list[Message]:
        channels = self._free_channels()
        free = sum(self._capacity[ch] - self._in_flight[ch] for ch in channels)
        limit = min(self._settings.claim_batch, free)
        if limit <= 0:
            self._backlog = True
            return []
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._settings.lease_seconds)
        # A lease names this dispatcher and this claim, so a verdict that comes back
        # after its lease ran out (and the row was claimed again) is recognised.
        self._claims += 1
        lease = f"{self.owner}:{self._claims}"

        async def claim(session: AsyncSession) -> list[Message]:
            claimed = await MessageRepository(session).claim_due(
                now=now, owner=lease, lease_until=lease_until, channels=channels, limit=limit
            )
            for message in claimed:
                if message.status == Status.SCHEDULED:
                    await status_writer.change(session, message, Status.QUEUED, now)
            return claimed

        claimed = await self._writer.submit(claim)
        self._backlog = len(claimed) >= limit
        return claimed

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
        self._launch(message)

    def _start(self, message: Message) -> None:
        self._in_flight[message.channel] += 1
        self._launch(message)

    def _launch(self, message: Message) -> None:
        task = asyncio.create_task(self._deliver(message), name=f"deliver-{message.id}")
        self._tasks[task] = message.id
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    async def _deliver(self, message: Message) -> None:
        lease = message.lease_owner or self.owner
        try:
            async with self._slots[message.channel]:
                verdict = await self._submit(message, lease)
            self._verdicts.put_nowait(verdict)
        finally:
            self._in_flight[message.channel] -= 1
            if self._backlog:
                self.wake()

    async def _submit(self, message: Message, lease: str) -> Verdict:
        outbound = OutboundMessage(
            id=message.id,
            account_id=message.account_id,
            environment=Environment(message.environment),
            channel=message.channel,
            to=message.to_address,
            sender=message.from_address,
            body=message.body,
            content=message.content or {},
            attempt=message.attempts,
            segments=message.segments,
            encoding=message.encoding,
        )
        try:
            provider = await self._providers.require(
                message.account_id, outbound.environment, message.channel
            )
        except ApiError as error:
            # The provider was removed after the message was accepted: it may come back.
            return Verdict(
                message.id, lease, error=RetryableDeliveryError(error.code, error.detail)
            )
        try:
            self.submissions += 1
            result = await provider.send(outbound)
        except DeliveryError as error:
            return Verdict(message.id, lease, error=error)
        except Exception as error:
            log.exception("provider failed on %s", message.id)
            return Verdict(
                message.id,
                lease,
                error=RetryableDeliveryError("provider_error", type(error).__name__),
            )
        return Verdict(
            message.id,
            lease,
            provider=provider.name,
            provider_message_id=result.provider_message_id,
        )

    async def _record_verdicts(self) -> None:
        while True:
            batch = [await self._verdicts.get()]
            while not self._verdicts.empty() and len(batch) < 500:
                batch.append(self._verdicts.get_nowait())
            await self._record(batch)

    async def _flush_verdicts(self) -> None:
        batch = []
        while not self._verdicts.empty():
            batch.append(self._verdicts.get_nowait())
        if batch:
            await self._record(batch)

    async def _record(self, batch: list[Verdict]) -> None:
        settled: dict[str, dict[str, object]] = {}
        for attempt in range(5):
            try:
                settled = await self._writer.submit(lambda session: self._apply_all(session, batch))
                break
            except Exception:
                log.exception("recording %d verdicts failed (try %d)", len(batch), attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            # The leases will run out and the messages be sent again: at least once.
            log.error("gave up recording %d verdicts", len(batch))
        for message_id, resource in settled.items():
            self._waiters.resolve(message_id, resource)
        self._on_committed()

    async def _apply_all(
        self, session: AsyncSession, batch: list[Verdict]
    ) -> dict[str, dict[str, object]]:
        """Record the verdicts; the messages that left the queue, as answers."""
        repo = MessageRepository(session)
        messages = {m.id: m for m in await repo.get_many([v.message_id for v in batch])}
        settled = [
            messages[verdict.message_id]
            for verdict in batch
            if verdict.message_id in messages
            and await self._apply(session, messages[verdict.message_id], verdict)
        ]
        if not settled:
            return {}
        await session.flush()
        events = await repo.events_of([message.id for message in settled])
        return {
            message.id: message_out(message, events.get(message.id, [])).model_dump(
                mode="json", by_alias=True
            )
            for message in settled
        }

    async def _apply(self, session: AsyncSession, message: Message, verdict: Verdict) -> bool:
        at = self._clock.now()
        if message.lease_owner != verdict.lease:
            # Our lease ran out and someone else holds the message now: the status
            # machine still takes a "sent", but the queue fields are theirs.
            if verdict.error is None:
                message.provider = verdict.provider
                message.provider_message_id = verdict.provider_message_id
                await status_writer.change(
                    session, message, Status.SENT, at, detail={"worker": self.owner, "late": True}
                )
            return False
        if verdict.error is None:
            message.provider = verdict.provider
            message.provider_message_id = verdict.provider_message_id
            message.lease_owner = None
            await status_writer.change(
                session, message, Status.SENT, at, detail={"worker": self.owner}
            )
            return True
        error = verdict.error
        retryable = isinstance(error, RetryableDeliveryError)
        if retryable and message.attempts < self._settings.max_attempts:
            assert isinstance(error, RetryableDeliveryError)
            delay = retry_delay(
                message.attempts,
                base=self._settings.backoff_base_seconds,
                maximum=self._settings.backoff_max_seconds,
                hint=error.retry_after,
            )
            message.lease_owner = None
            message.next_attempt_at = at + timedelta(seconds=delay)
            message.error_code, message.error_message = error.code, error.message
            message.updated_at = at
            session.add(
                MessageEvent(
                    message_id=message.id,
                    status=message.status,
                    at=at,
                    applied=False,
                    kind="retry",
                    detail={
                        "attempt": message.attempts,
                        "error": {"code": error.code, "message": error.message},
                        "retryAt": message.next_attempt_at.isoformat(),
                    },
                )
            )
            return False
        code = error.code if isinstance(error, PermanentDeliveryError) else "provider_unavailable"
        message.lease_owner = None
        await status_writer.change(
            session, message, Status.FAILED, at, error_code=code, error_message=error.message
        )
        return True

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
