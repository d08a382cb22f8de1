"""Resealers for the webhook secrets kept at rest (see ``tidings secrets rotate``):
endpoint signing secrets, current and previous, and the secrets kept sealed in the
stored answers of ``POST /api/v4/webhooks/create`` for ``Idempotency-Key`` replays.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts
from tidings.idempotency.models import IdempotencyKey
from tidings.webhooks.models import WebhookEndpoint

BATCH = 500
# The idempotency scope of webhook creation (method and route path; see scope_of).
CREATE_SCOPE = "POST /api/v4/webhooks/create"


async def reseal_endpoint_secrets(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    counts = ResealCounts("webhook endpoint secrets")
    after = ""
    while True:
        rows = (
            await session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.secret, WebhookEndpoint.previous_secret)
                .where(WebhookEndpoint.id > after)
                .order_by(WebhookEndpoint.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return counts
        for endpoint_id, secret, previous in rows:
            new_secret = counts.reseal(ring, secret, endpoint_id)
            new_previous = (
                counts.reseal(ring, previous, f"{endpoint_id} (previous secret)")
                if previous is not None
                else None
            )
            if new_secret is None and new_previous is None:
                continue
            # Compare-and-set: a rotation through the API meanwhile is kept, not undone.
            written = await session.execute(
                update(WebhookEndpoint)
                .where(
                    WebhookEndpoint.id == endpoint_id,
                    WebhookEndpoint.secret == secret,
                    WebhookEndpoint.previous_secret.is_not_distinct_from(previous),
                )
                .values(secret=new_secret or secret, previous_secret=new_previous or previous)
                .execution_options(synchronize_session=False)
            )
            if not getattr(written, "rowcount", 0):
                counts.changed += 1
        after = rows[-1][0]


async def reseal_stored_answers(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    counts = ResealCounts("webhook secrets in stored create answers")
    rows = await session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.endpoint == CREATE_SCOPE, IdempotencyKey.response_body.is_not(None)
        )
    )
    for row in rows:
        body = row.response_body or {}
        stored = body.get("secret")
        if not isinstance(stored, str):
            continue
        sealed = counts.reseal(ring, stored, f"the stored answer for {body.get('id')}")
        if sealed is not None:
            row.response_body = {**body, "secret": sealed}
    return counts
