"""Accepting a single send: the path every channel's send endpoint shares.

    prepare (channel rules) -> one transaction: the opt-out check (SMS),
    credits (production), INSERT message, its first event and outbox row ->
    commit -> hand it to the dispatcher -> wait, bounded, for the verdict ->
    answer

The message is committed before anything else happens, so once a client holds
an id, the message reaches a final status whatever crashes in between.

No HTTP here: the flow takes the tenant, the idempotency key's scope and whether the
caller asked not to wait, and returns the status and body to answer with
(:mod:`tidings.api.sending` reads the request and writes the response; the chat box
calls it with its token's tenant).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.optouts import OptOutRepository
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import PaymentRequired
from tidings.core.ids import new_id
from tidings.core.tenancy import TenantScope
from tidings.credits.repository import CreditRepository
from tidings.db.on_demand import session_on_demand
from tidings.idempotency.service import (
    IdempotencyRepository,
    KeyScope,
    StoredAnswer,
    hold_key,
    previous_answer,
    reread_after_conflict,
    taken_answer,
)
from tidings.messages import status_writer
from tidings.messages.dispatcher import Lease
from tidings.messages.drafts import Draft
from tidings.messages.models import Message
from tidings.messages.repository import MessageRepository
from tidings.messages.rules.sms import opted_out_error
from tidings.messages.schemas import MessageOut, message_body, message_out
from tidings.messages.status import PENDING, Status
from tidings.messages.waiters import Answer

Prepare = Callable[[AsyncSession], Awaitable[Draft]]


class OptedOut:
    """A write's answer when the recipient has opted out of the draft's channel."""


@dataclass(frozen=True, slots=True)
class SendAnswer:
    status: int
    body: dict[str, Any]
    # Whether the answer honoured ``Prefer: respond-async``.
    async_applied: bool = False


def transient_message(**values: Any) -> Message:
    """``Message(**values)``, holding the same values, without setting each through the
    ORM's instrumentation (about 6 us instead of 25): a send's message is inserted with
    Core (:func:`status_writer.start`) and never added to a session, so the change
    tracking those sets feed is never read. Attributes set afterwards are set as usual.
    """
    message = Message()
    for name in values:
        if not hasattr(Message, name):  # as the ORM's constructor refuses it
            raise TypeError(f"{name!r} is an invalid keyword argument for Message")
    message.__dict__.update(values)
    return message


def new_message(
    principal: TenantScope,
    draft: Draft,
    now: datetime,
    lease: Lease | None = None,
    dialect: Dialect | None = None,
) -> status_writer.FirstStatus:
    """The message a draft becomes, with its first status and its rows bound for
    ``dialect``: all of it made before the write's turn at the writer, as none of it
    reads the database (:func:`status_writer.prepare_start`)."""
    charged = principal.environment == Environment.PRODUCTION and draft.cost > 0
    message = transient_message(
        id=draft.id or new_id("msg"),
        account_id=principal.account_id,
        environment=principal.environment.value,
        channel=draft.channel,
        direction="outbound",
        to_address=draft.to,
        from_address=draft.sender,
        body=draft.body,
        content=draft.content,
        segments=draft.segments,
        encoding=draft.encoding,
        credits=draft.cost if charged else Decimal(0),
        attempts=0,
        scheduled_at=draft.scheduled_at,
    )
    if draft.scheduled_at is not None and draft.scheduled_at > now:
        message.next_attempt_at = draft.scheduled_at
        return status_writer.prepare_start(message, Status.SCHEDULED, now, dialect)
    if lease is not None:
        # Stored already leased to this process's dispatcher, which takes it straight
        # from here; should the process die, the lease runs out and anyone claims it.
        message.lease_owner, message.next_attempt_at, message.attempts = (
            lease.owner,
            lease.until,
            1,
        )
    else:
        message.next_attempt_at = now
    return status_writer.prepare_start(message, Status.QUEUED, now, dialect)


async def store_new(
    session: AsyncSession, principal: TenantScope, draft: Draft, first: status_writer.FirstStatus
) -> Message:
    """Pay for the message (in production) and insert it, in the write's transaction."""
    message = first.message
    if principal.environment == Environment.PRODUCTION and draft.cost > 0:
        debited = await CreditRepository(session).debit(
            principal.account_id, draft.cost, at=first.at, message_id=message.id
        )
        if not debited:
            balance = await CreditRepository(session).balance(principal.account_id)
            raise PaymentRequired(
                f"This message costs {draft.cost} credits and the balance is {balance}."
            )
    await status_writer.write_start(session, first)
    return message


async def store_draft(
    session: AsyncSession,
    principal: TenantScope,
    draft: Draft,
    now: datetime,
    lease: Lease | None = None,
) -> Message:
    """Make the draft's message and store it, in one step."""
    return await store_new(session, principal, draft, new_message(principal, draft, now, lease))


def _as_stored(message: Message) -> dict[str, Any]:
    """The answer of a send that does not wait: the message as just committed, with
    its one event (no read back; delivery may already have moved it on, as the
    client will see)."""
    return message_body(message, [(message.status, message.created_at, True, None)])


def verdict_view(out: MessageOut) -> MessageOut:
    """A waiting send's answer read back after a receipt moved the message on: the
    message as its verdict left it, ``sent`` with the events until then (the answer
    to a single send shows ``sent`` or ``failed``, spec section 4; the receipt is
    for the webhooks and later reads). This happens when the verdict's own answer
    did not reach the request in time (under load) and it looked for itself."""
    if Status(out.status) in (Status.QUEUED, Status.SCHEDULED, Status.SENT, Status.FAILED):
        return out
    for index, event in enumerate(out.events or []):
        if event.status == Status.SENT and event.applied:
            return out.model_copy(
                update={
                    "status": Status.SENT,
                    "error": None,
                    "updated_at": event.at,
                    "events": (out.events or [])[: index + 1],
                }
            )
    return out


class SendFlow:
    """One single-send request, from idempotency check to answer."""

    def __init__(self, ctx: AppContext, tenant: TenantScope) -> None:
        self._ctx = ctx
        self._principal = tenant

    async def run(
        self, prepare: Prepare, *, key: KeyScope | None, respond_async: bool = False
    ) -> SendAnswer:
        ctx, principal, scope = self._ctx, self._principal, key
        now = ctx.clock.now()
        # The checks only read, so they run beside other requests; the writes then go
        # through the group committer with everyone else's. Most sends read nothing
        # here: the session is made only if something uses it.
        async with session_on_demand(ctx.sessions) as session:
            previous = await previous_answer(session, scope, now)
            if previous is not None:
                return await self._replay(previous)
            draft = await prepare(session)

        immediate = draft.scheduled_at is None or draft.scheduled_at <= now
        precedence = ctx.runtime.precedence
        # While sends take precedence, an asynchronous one is left for a claim.
        handed_over = immediate and not (respond_async and precedence.yielding)
        lease = ctx.runtime.reserve(draft.channel) if handed_over else None
        first = new_message(principal, draft, now, lease, ctx.engine.dialect)

        async def write(session: AsyncSession) -> Message | StoredAnswer | OptedOut:
            earlier = await taken_answer(session, scope, now)
            if earlier is not None:
                return earlier
            if draft.opt_out_channel is not None and await OptOutRepository(session).is_opted_out(
                principal.account_id, principal.environment, draft.opt_out_channel, draft.to
            ):
                # Answered, not raised: a raising unit makes its whole group run again.
                return OptedOut()
            message = await store_new(session, principal, draft, first)
            hold_key(session, scope, message.id, now)
            return message

        try:
            handed = time.monotonic_ns()
            outcome = await ctx.runtime.writer.submit(write)
            precedence.send_stored(time.monotonic_ns() - handed)
        except IntegrityError:
            ctx.runtime.release(draft.channel, lease)
            if scope is None:
                raise
            # Another process took the key between our check and our write.
            return await self._replay(await reread_after_conflict(ctx.sessions, scope, now))
        except BaseException:
            ctx.runtime.release(draft.channel, lease)
            raise
        if isinstance(outcome, StoredAnswer):
            ctx.runtime.release(draft.channel, lease)
            return await self._replay(outcome)
        if isinstance(outcome, OptedOut):
            ctx.runtime.release(draft.channel, lease)
            assert draft.opt_out_channel is not None
            raise opted_out_error(draft.to, draft.opt_out_channel)
        message = outcome
        waiting = (
            not respond_async
            and message.status == Status.QUEUED
            and ctx.settings.send_wait_seconds > 0
        )
        future = ctx.runtime.waiters.register(message.id) if waiting else None
        if lease is not None:
            ctx.runtime.adopt(message)
        else:
            ctx.runtime.wake()
        answer = await self._wait(message.id, future) if future is not None else None
        if answer is not None:
            status, body = 200, answer
        elif not waiting:
            status, body = 202, _as_stored(message)
        else:
            status, body = await self._answer(message.id, as_of_verdict=True)
        if scope is not None:
            await self._remember(scope, status, body)
        return SendAnswer(status, body, async_applied=respond_async)

    async def _wait(self, message_id: str, future: asyncio.Future[Answer | None]) -> Answer | None:
        """Wait (bounded) for the verdict; the answer the dispatcher built, if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ctx.settings.send_wait_seconds
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(future),
                        min(remaining, self._ctx.runtime.waiters.poll_seconds),
                    )
                except TimeoutError:
                    # A verdict nobody told us of (a lost notification): look ourselves.
                    if await self._settled(message_id):
                        return None
            return None
        finally:
            self._ctx.runtime.waiters.discard(message_id, future)

    async def _settled(self, message_id: str) -> bool:
        async with self._ctx.sessions() as session:
            message = await MessageRepository(session).get_by_id(message_id)
        return message is None or Status(message.status) not in PENDING

    async def _answer(
        self, message_id: str, *, as_of_verdict: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """The message as it is now, read back (200); ``as_of_verdict``: as its verdict
        left it (see :func:`as_of_verdict`)."""
        async with self._ctx.sessions() as session:
            repo = MessageRepository(session)
            message = await repo.get_by_id(message_id)
            assert message is not None
            events = await repo.events(message_id)
        out = message_out(message, events)
        if as_of_verdict:
            out = verdict_view(out)
        return 200, out.model_dump(mode="json", by_alias=True)

    async def _remember(self, scope: KeyScope, status: int, body: dict[str, Any]) -> None:
        async def write(session: AsyncSession) -> None:
            await IdempotencyRepository(session).store_answer(scope, status, body)

        await self._ctx.runtime.writer.submit(write)

    async def _replay(self, previous: StoredAnswer) -> SendAnswer:
        if previous.body is not None:
            return SendAnswer(previous.status, previous.body)
        # The first request has not finished answering: show the message as it is.
        assert previous.resource_id is not None
        status, body = await self._answer(previous.resource_id)
        return SendAnswer(status, body)
