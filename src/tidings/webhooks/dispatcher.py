"""The webhook dispatcher: claims due deliveries, POSTs them, records each attempt.

The same lease pattern as the message dispatcher: a claim sets ``lease_owner``
and moves ``next_attempt_at`` to the lease's end, so a process that dies leaves
its deliveries due again. The HTTP request happens outside any transaction; its
outcome is recorded through the group committer:

- 2xx: ``delivered``; the endpoint is healthy again;
- anything else (3xx included, redirects are never followed), a timeout or a
  network error: another attempt after the next delay of the retry schedule
  (with jitter), or after ``Retry-After`` on 429 and 503; once the schedule is
  used up the delivery is ``failed`` (it can be replayed);
- 410 Gone disables the endpoint, as does failing every attempt for
  ``disable_after_seconds``; its deliveries wait, pending, until it is enabled.

Signing secrets are opened per delivery, in its own task, never inside the shared
claim: a secret that cannot be opened (a lost key, a corrupt row) disables its own
endpoint, with the reason, and hands the delivery back unattempted; every other
endpoint keeps delivering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.key_ring import KeyRing, SecretUnavailable
from tidings.db.group_commit import GroupCommitter
from tidings.settings import WebhookSettings
from tidings.webhooks import signing, ssrf
from tidings.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tidings.webhooks.repository import WebhookRepository
from tidings.webhooks.sender import Outcome, Sender

log = logging.getLogger("tidings.webhooks")

MAX_RETRY_AFTER_SECONDS = 86400.0


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: str
    lease: str
    event_id: str
    body: bytes
    url: str
    environment: Environment
    endpoint_id: str
    # Still sealed: opened in the delivery's own task (see signing_secrets).
    sealed_secrets: tuple[str, ...]


def sealed_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return tuple(found)


def signing_secrets(job: Job, ring: KeyRing) -> tuple[str, ...]:
    """The job's secrets opened; raises :class:`SecretUnavailable` for this job alone."""
    return tuple(ring.open(sealed) for sealed in job.sealed_secrets)


def unavailable_reason(error: SecretUnavailable) -> str:
    return (
        f"Its signing secret cannot be opened: {error.reason}. Restore the key to "
        "TIDINGS_SECRETS_KEYS, or rotate the secret, then enable the endpoint again."
    )


class WebhookDispatcher:
    def __init__(
        self,
        *,
        writer: GroupCommitter,
        clock: Clock,
        settings: WebhookSettings,
        secret_box: KeyRing,
    ) -> None:
        self._ring = secret_box
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._sender = Sender(
            timeout=settings.timeout_seconds, excerpt_bytes=settings.response_excerpt_bytes
        )
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(3)}"
        self._claims = 0
        self._tasks: dict[asyncio.Task[None], str] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                # Cleared before the claim, not after: a wake-up (deliveries written,
                # or stop) that comes during the claim must not wait for the next poll.
                self._wake.clear()
                free = self._settings.concurrency - len(self._tasks)
                jobs = await self._claim_safely(free) if free > 0 else []
                for job in jobs:
                    task = asyncio.create_task(self._deliver(job), name=f"webhook-{job.event_id}")
                    self._tasks[task] = job.delivery_id
                    task.add_done_callback(lambda done: self._tasks.pop(done, None))
                if jobs and len(self._tasks) < self._settings.concurrency:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)
        finally:
            await self._drain()
            await self._sender.close()

    async def _claim_safely(self, limit: int) -> list[Job]:
        try:
            return await self._claim(limit)
        except Exception:
            log.exception("claiming due webhook deliveries failed; trying again shortly")
            await asyncio.sleep(self._settings.poll_interval_seconds)
            return []

    async def _claim(self, limit: int) -> list[Job]:
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._settings.lease_seconds)
        self._claims += 1
        lease = f"{self.owner}:{self._claims}"

        async def claim(session: AsyncSession) -> list[Job]:
            repo = WebhookRepository(session)
            claimed = await repo.claim_due(
                now=now, owner=lease, lease_until=lease_until, limit=limit
            )
            endpoints = await repo.endpoints_by_id([d.endpoint_id for d in claimed])
            return [
                Job(
                    delivery_id=delivery.id,
                    lease=lease,
                    event_id=delivery.event_id,
                    body=signing.body_of(delivery.event_type, delivery.event_at, delivery.payload),
                    url=endpoints[delivery.endpoint_id].url,
                    environment=Environment(endpoints[delivery.endpoint_id].environment),
                    endpoint_id=delivery.endpoint_id,
                    sealed_secrets=sealed_secrets(endpoints[delivery.endpoint_id], now),
                )
                for delivery in claimed
            ]

        return await self._writer.submit(claim)

    async def _deliver(self, job: Job) -> None:
        try:
            opened = signing_secrets(job, self._ring)
        except SecretUnavailable as error:
            await self._hold(job, unavailable_reason(error))
            return
        at = self._clock.now()
        try:
            outcome = await self._attempt(job, opened, at)
        except Exception as error:
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)
            outcome = Outcome(None, f"internal error: {type(error).__name__}", 0, None)
        if not outcome.ok:
            # Operators see failures without opening the API; never the query string.
            log.warning(
                "webhook delivery %s to %s failed: %s",
                job.delivery_id,
                ssrf.loggable_url(job.url),
                outcome.error or f"HTTP {outcome.status_code}",
            )
        for attempt in range(5):
            try:
                await self._writer.submit(lambda session: self._record(session, job, at, outcome))
                break
            except Exception:
                log.exception("recording webhook attempt failed (try %d)", attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        # Recording may have released the next event of the same message.
        self.wake()

    async def _attempt(self, job: Job, secrets: tuple[str, ...], at: datetime) -> Outcome:
        try:
            target = await ssrf.vet(job.url, job.environment, self._settings)
        except ssrf.UnsafeUrl as error:
            return Outcome(None, f"unsafe_webhook_url: {error}", 0, None)
        timestamp = int(at.timestamp())
        headers = signing.headers_for(secrets, job.event_id, timestamp, job.body)
        return await self._sender.post(job.url, target, headers, job.body)

    async def _hold(self, job: Job, reason: str) -> None:
        """Disable the job's endpoint and hand the delivery back unattempted: it waits,
        pending, until the endpoint is enabled again."""

        async def hold(session: AsyncSession) -> None:
            delivery = (await WebhookRepository(session).get_deliveries([job.delivery_id])).get(
                job.delivery_id
            )
            endpoint = await session.get(WebhookEndpoint, job.endpoint_id)
            if delivery is None or endpoint is None or delivery.lease_owner != job.lease:
                return
            now = self._clock.now()
            delivery.lease_owner = None
            delivery.attempts -= 1
            delivery.next_attempt_at = now
            delivery.updated_at = now
            delivery.last_error = "secret_unavailable"
            if endpoint.enabled:
                endpoint.enabled = False
                endpoint.disabled_reason = reason
                endpoint.disabled_at = now
                endpoint.updated_at = now
                log.error("webhook endpoint %s disabled: %s", endpoint.id, reason)

        try:
            await self._writer.submit(hold)
        except Exception:
            # The lease runs out and the next claim tries this delivery again.
            log.exception("holding webhook delivery %s failed", job.delivery_id)

    def _delay(self, attempts: int, outcome: Outcome) -> float | None:
        """Seconds until the next attempt, or None when the schedule is used up."""
        schedule = self._settings.retry_schedule
        if attempts > len(schedule):
            return None
        if outcome.retry_after is not None:
            return min(outcome.retry_after, MAX_RETRY_AFTER_SECONDS)
        jitter = self._settings.retry_jitter
        return float(schedule[attempts - 1]) * random.uniform(1 - jitter, 1 + jitter)

    async def _record(
        self, session: AsyncSession, job: Job, at: datetime, outcome: Outcome
    ) -> None:
        repo = WebhookRepository(session)
        delivery = (await repo.get_deliveries([job.delivery_id])).get(job.delivery_id)
        if delivery is None:
            return  # the endpoint was deleted meanwhile
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                at=at,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=outcome.error,
                response_excerpt=outcome.excerpt,
            )
        )
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if delivery.lease_owner != job.lease or endpoint is None:
            return  # our lease ran out and someone else holds the delivery now
        now = self._clock.now()
        delivery.lease_owner = None
        delivery.updated_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.ok:
            delivery.status = "delivered"
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            endpoint.failing_since = None
            return
        self._failed(delivery, endpoint, outcome, at, now)

    def _failed(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        outcome: Outcome,
        at: datetime,
        now: datetime,
    ) -> None:
        delay = self._delay(delivery.attempts, outcome)
        if delay is None:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        if endpoint.failing_since is None:
            endpoint.failing_since = at
        reason = None
        if outcome.status_code == 410:
            reason = "The endpoint answered 410 Gone."
        elif (now - endpoint.failing_since).total_seconds() >= self._settings.disable_after_seconds:
            reason = f"Every attempt failed since {signing.iso(endpoint.failing_since)}."
        if reason is not None and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = reason
            endpoint.disabled_at = now
            endpoint.updated_at = now
            log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._settings.timeout_seconds)
        unfinished = [self._tasks[task] for task in pending if task in self._tasks]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)
        if unfinished:
            now = self._clock.now()

            async def release(session: AsyncSession) -> None:
                await WebhookRepository(session).release(self.owner + ":", unfinished, now)

            with contextlib.suppress(Exception):
                await self._writer.submit(release)
