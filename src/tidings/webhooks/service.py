"""What the webhook endpoints do: validation, the SSRF check, and every write.

Writes go through the process's group committer; each unit only touches the
database (the URL check, which resolves names, runs before).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, NotFound, Unprocessable
from tidings.core.ids import new_id
from tidings.idempotency.service import (
    KeyScope,
    StoredAnswer,
    add_once,
)
from tidings.webhooks import signing, ssrf
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint
from tidings.webhooks.repository import WebhookRepository
from tidings.webhooks.schemas import EVENT_PREFIXES, EVENT_TYPES, WebhookCreate, WebhookUpdate

TEST_EVENT = "webhook.test"


def validate_events(events: list[str] | None) -> list[str]:
    if events is None:
        return ["*"]
    errors = []
    for index, name in enumerate(events):
        known = (
            name == "*"
            or name in EVENT_TYPES
            or (name.endswith(".*") and name[:-2] in EVENT_PREFIXES)
        )
        if not known:
            errors.append(
                FieldError(
                    f"events.{index}",
                    "unknown_event",
                    f"{name!r} is not an event name or a prefix such as 'message.*'.",
                )
            )
    if errors:
        raise Unprocessable("The request has invalid fields: events.", errors=errors)
    return list(dict.fromkeys(events)) or ["*"]


async def vet_url(ctx: AppContext, url: str, environment: Environment) -> str | None:
    """Refuse a URL the policy forbids; a warning for a host that does not resolve yet
    (accepted: every delivery checks the URL again, so nothing unsafe gets through)."""
    try:
        await ssrf.vet(url, environment, ctx.settings.webhooks)
    except ssrf.UnresolvedHost as error:
        return (
            f"The host {error.host!r} does not resolve from this server yet. The webhook "
            "is active; each delivery checks the URL again, and fails and is retried "
            "until the host resolves to an address webhooks may reach."
        )
    except ssrf.UnsafeUrl as error:
        raise Unprocessable(
            f"This webhook URL is not allowed: {error}",
            code="unsafe_webhook_url",
            errors=[FieldError("url", "unsafe_webhook_url", str(error))],
        ) from None
    return None


async def _endpoint(
    session: AsyncSession, account_id: str, environment: Environment, endpoint_id: str
) -> WebhookEndpoint:
    endpoint = await WebhookRepository(session).get(account_id, environment, endpoint_id)
    if endpoint is None:
        raise NotFound(f"There is no webhook {endpoint_id!r} here.")
    return endpoint


async def create(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    body: WebhookCreate,
    scope: KeyScope | None = None,
) -> tuple[WebhookEndpoint, str, str | None] | StoredAnswer:
    """The new endpoint, its signing secret (stored sealed, shown once) and a warning
    about its URL, or the earlier answer when the ``Idempotency-Key`` was already used."""
    events = validate_events(body.events)
    warning = await vet_url(ctx, body.url, environment)
    now = ctx.clock.now()
    endpoint = WebhookEndpoint(
        id=new_id("whk"),
        account_id=account_id,
        environment=environment.value,
        url=body.url,
        events=events,
        description=body.description,
        enabled=True,
        secret=ctx.key_ring.seal(secret := signing.new_secret()),
        created_at=now,
        updated_at=now,
    )

    earlier = await add_once(ctx.runtime.writer, ctx.sessions, scope, now, endpoint, endpoint.id)
    return earlier if earlier is not None else (endpoint, secret, warning)


async def update_endpoint(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    endpoint_id: str,
    body: WebhookUpdate,
) -> WebhookEndpoint:
    events = validate_events(body.events) if body.events is not None else None
    if body.url is not None:
        await vet_url(ctx, body.url, environment)
    given = body.model_fields_set

    async def write(session: AsyncSession) -> WebhookEndpoint:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        now = ctx.clock.now()
        if body.url is not None:
            endpoint.url = body.url
        if events is not None:
            endpoint.events = events
        if "description" in given:
            endpoint.description = body.description
        if body.enabled is True and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
            # Resume at once with what is pending (not the remaining backoff).
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.lease_owner.is_(None),
                )
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
        elif body.enabled is False and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = "Disabled by the account."
            endpoint.disabled_at = now
        endpoint.updated_at = now
        return endpoint

    endpoint = await ctx.runtime.writer.submit(write)
    ctx.runtime.webhooks_wake()
    return endpoint


async def delete(
    ctx: AppContext, account_id: str, environment: Environment, endpoint_id: str
) -> None:
    async def write(session: AsyncSession) -> None:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        await session.delete(endpoint)

    await ctx.runtime.writer.submit(write)


async def rotate_secret(
    ctx: AppContext, account_id: str, environment: Environment, endpoint_id: str
) -> tuple[WebhookEndpoint, str]:
    overlap = timedelta(seconds=ctx.settings.webhooks.rotation_overlap_seconds)

    secret = signing.new_secret()
    sealed = ctx.key_ring.seal(secret)

    async def write(session: AsyncSession) -> WebhookEndpoint:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        now = ctx.clock.now()
        # A secret that cannot be opened (a lost key) cannot sign the overlap either:
        # rotating is how an account replaces it, so it is dropped, not kept.
        usable = ctx.key_ring.opens(endpoint.secret)
        endpoint.previous_secret = endpoint.secret if usable else None
        endpoint.previous_secret_expires_at = now + overlap if usable else None
        endpoint.secret = sealed
        endpoint.updated_at = now
        return endpoint

    return await ctx.runtime.writer.submit(write), secret


async def send_test(
    ctx: AppContext, account_id: str, environment: Environment, endpoint_id: str
) -> WebhookDelivery:
    async def write(session: AsyncSession) -> WebhookDelivery:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        now = ctx.clock.now()
        delivery = WebhookDelivery(
            id=new_id("dlv"),
            endpoint_id=endpoint.id,
            event_id=new_id("evt"),
            event_type=TEST_EVENT,
            subject_id=None,
            payload={"webhookId": endpoint.id, "message": "A test event from Tidings."},
            event_at=now,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(delivery)
        return delivery

    delivery = await ctx.runtime.writer.submit(write)
    ctx.runtime.webhooks_wake()
    return delivery


async def retry_delivery(
    ctx: AppContext, account_id: str, environment: Environment, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    """Send a delivery again now, with a fresh schedule (its webhook-id stays)."""

    async def write(session: AsyncSession) -> WebhookDelivery:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        delivery = await WebhookRepository(session).delivery(endpoint.id, delivery_id)
        if delivery is None:
            raise NotFound(f"There is no delivery {delivery_id!r} for this webhook.")
        if delivery.lease_owner is None:
            now = ctx.clock.now()
            delivery.status = "pending"
            delivery.attempts = 0
            delivery.next_attempt_at = now
            delivery.updated_at = now
        return delivery

    delivery = await ctx.runtime.writer.submit(write)
    ctx.runtime.webhooks_wake()
    return delivery


async def replay_failed(
    ctx: AppContext, account_id: str, environment: Environment, endpoint_id: str, since: datetime
) -> int:
    async def write(session: AsyncSession) -> int:
        endpoint = await _endpoint(session, account_id, environment, endpoint_id)
        return await WebhookRepository(session).replay_failed(endpoint.id, since, ctx.clock.now())

    count = await ctx.runtime.writer.submit(write)
    ctx.runtime.webhooks_wake()
    return count
