"""Accepting a bulk request: the path the three bulk endpoints share.

    idempotency check -> rules for the channel (one read of opt-outs or
    suppressions) -> plan every recipient in memory, off the event loop ->
    one transaction: credits, the batch row, every message and its first
    event (multi-row INSERTs), the idempotency key with its answer -> commit
    -> wake the dispatchers -> 202

The recipients, once planned, and the planned messages, once written, are
freed in a worker thread a slice at a time: freed at once on the loop's thread
(or left for the cyclic collector's first pass after the request), 100,000 of
them held the event loop for hundreds of ms.

The answer comes once every accepted message is committed, so a batch id in
a client's hands means all of its messages will reach a final status.

No HTTP here: the flow takes the tenant and the idempotency key's scope and
returns the status and body to answer with (:mod:`tidings.api.bulk` reads the
request and writes the response).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.channels import ChannelRules
from tidings.bulk.planning import ListedRecipient, Plan, Recipient, plan, release
from tidings.bulk.schemas import BulkCommon
from tidings.bulk.store import store_batch
from tidings.contacts.lists import list_recipients
from tidings.context import AppContext
from tidings.core.errors import FieldError, Unprocessable
from tidings.core.ids import new_id
from tidings.core.tenancy import TenantScope
from tidings.idempotency.service import (
    IdempotencyRepository,
    KeyScope,
    StoredAnswer,
    previous_answer,
    reread_after_conflict,
)
from tidings.messages.rules.sms import check_schedule

# Builds the channel's rules; may read (opt-outs, suppressions, a template).
PrepareRules = Callable[[AsyncSession], Awaitable[ChannelRules]]


@dataclass(frozen=True, slots=True)
class BulkSpec:
    channel: str
    sender: str | None
    request: BulkCommon


@dataclass(frozen=True, slots=True)
class BulkAnswer:
    status: int
    body: dict[str, Any]


class BulkFlow:
    def __init__(self, ctx: AppContext, tenant: TenantScope) -> None:
        self._ctx = ctx
        self._principal = tenant

    async def run(
        self, spec: BulkSpec, prepare: PrepareRules, *, key: KeyScope | None
    ) -> BulkAnswer:
        ctx, principal, scope = self._ctx, self._principal, key
        now = ctx.clock.now()
        scheduled_at = check_schedule(spec.request.scheduled_at, ctx.clock)
        async with ctx.sessions() as session:
            previous = await previous_answer(session, scope, now)
            if previous is not None:
                return _replay(previous)
            recipients = await self._recipients(session, spec)
            rules = await prepare(session)
        settings = ctx.settings.bulk
        if rules.prefetch is not None:
            await rules.prefetch([recipient.to for recipient in recipients])
        # Planning 100,000 recipients takes a while: in a thread, the loop keeps serving.
        # List members come from stored contacts, which hold no lone surrogates.
        check_text = spec.request.recipients is not None and spec.request.lone_surrogates_possible

        def plan_all() -> Plan:
            try:
                return plan(
                    recipients,
                    normalise=rules.normalise,
                    build=rules.build,
                    refused=rules.refused,
                    errors_listed=settings.errors_listed,
                    check_text=check_text,
                )
            finally:
                release(recipients)

        result: Plan = await asyncio.to_thread(plan_all)
        batch_id = new_id("bat")
        errors = [rejection.as_json() for rejection in result.errors]
        later = scheduled_at is not None
        body: dict[str, Any] = {
            "id": batch_id,
            "status": "scheduled" if later else "accepted",
            "total": result.total,
            "accepted": len(result.messages),
            "rejected": result.rejected,
            "duplicates": result.duplicates,
            "credits": 0.0,
            "errors": errors,
        }

        async def write(session: AsyncSession) -> StoredAnswer | None:
            keys = IdempotencyRepository(session)
            if scope is not None:
                earlier = await keys.taken(scope, now)
                if earlier is not None:
                    return earlier
            batch = await store_batch(
                session,
                batch_id=batch_id,
                account_id=principal.account_id,
                environment=principal.environment,
                channel=spec.channel,
                name=spec.request.name,
                sender=spec.sender,
                plan=result,
                scheduled_at=scheduled_at,
                now=now,
                errors_json=errors,
                shared_content=rules.shared,
            )
            body["credits"] = float(batch.credits)
            if scope is not None:
                keys.add(scope, batch_id, now)
                await session.flush()
                await keys.store_answer(scope, 202, body)
            return None

        try:
            earlier = await ctx.runtime.writer.submit(write)
        except IntegrityError:
            if scope is None:
                raise
            return _replay(await reread_after_conflict(ctx.sessions, scope, now))
        finally:
            await asyncio.to_thread(release, result.messages)
        if earlier is not None:
            return _replay(earlier)
        ctx.runtime.wake()
        return BulkAnswer(202, body)

    async def _recipients(self, session: AsyncSession, spec: BulkSpec) -> Sequence[Recipient]:
        request = spec.request
        if (request.recipients is None) == (request.list_id is None):
            raise Unprocessable(
                "Give either recipients or listId.",
                errors=[FieldError("recipients", "missing", "Give recipients or listId.")],
            )
        maximum = self._ctx.settings.bulk.max_recipients
        if request.recipients is not None:
            if not request.recipients:
                raise Unprocessable(
                    "recipients is empty.",
                    errors=[FieldError("recipients", "empty", "Give at least one recipient.")],
                )
            found: Sequence[Recipient] = request.recipients
        else:
            assert request.list_id is not None
            found = await self._list_members(session, request.list_id, spec.channel)
        if len(found) > maximum:
            raise Unprocessable(
                f"A bulk request takes at most {maximum} recipients; this one has {len(found)}.",
                code="too_many_recipients",
                errors=[FieldError("recipients", "too_many", f"At most {maximum}.")],
            )
        return found

    async def _list_members(
        self, session: AsyncSession, list_id: str, channel: str
    ) -> list[ListedRecipient]:
        members = await list_recipients(
            session,
            account_id=self._principal.account_id,
            environment=self._principal.environment.value,
            list_id=list_id,
        )
        # A member without the channel's address is rejected like an invalid one.
        return [
            ListedRecipient(
                (member.email if channel == "email" else member.phone) or "", member.variables
            )
            for member in members
        ]


def _replay(previous: StoredAnswer) -> BulkAnswer:
    if previous.body is not None:
        return BulkAnswer(previous.status, previous.body)
    # Written in the batch's own transaction, so a key without its answer is not seen.
    raise RuntimeError("an idempotency key of a batch has no stored answer")
