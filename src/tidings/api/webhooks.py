"""Webhook endpoints (spec section 10): manage endpoints, see and replay deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.core.errors import Conflict, NotFound
from tidings.core.key_ring import SecretUnavailable
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.idempotency.service import IdempotencyRepository, previous_answer, scope_of
from tidings.webhooks import service
from tidings.webhooks.repository import DeliveryFilters, WebhookRepository
from tidings.webhooks.schemas import (
    DeliveryOut,
    ReplayOut,
    ReplayRequest,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
    delivery_out,
    webhook_out,
    webhook_with_secret,
)

router = APIRouter(prefix="/api/v4/webhooks", tags=["Webhooks"])

WebhookId = Annotated[
    str,
    Path(max_length=64, examples=["whk_01JDQ3W6V2X4N8ZB7YH5K9T0RM"], description="A webhook id."),
]
DeliveryId = Annotated[
    str,
    Path(max_length=64, examples=["dlv_01JDQ3W6V2X4N8ZB7YH5K9T0RM"], description="A delivery id."),
]


@router.post(
    "/create",
    response_model=WebhookWithSecret,
    status_code=201,
    summary="Create a webhook endpoint",
    responses=problem_responses(*AUTHENTICATED, 409, 422),
)
async def create_webhook(
    body: WebhookCreate, request: Request, principal: PrincipalDep, ctx: ContextDep
) -> JSONResponse:
    """The answer carries the signing secret; it is not shown again (rotate to get a
    new one), except to a retry with the same ``Idempotency-Key``. Production refuses
    plain-HTTP URLs and URLs that resolve to internal addresses (422
    ``unsafe_webhook_url``)."""
    account, environment = principal.account_id, principal.environment
    scope = await scope_of(request, account, environment.value)
    async with ctx.sessions() as session:
        earlier = await previous_answer(session, scope, ctx.clock.now())
    if earlier is None:
        outcome = await service.create(ctx, account, environment, body, scope)
        if isinstance(outcome, tuple):
            endpoint, secret, warning = outcome
            answer = webhook_with_secret(endpoint, secret).model_dump(mode="json", by_alias=True)
            answer["warning"] = warning
            if scope is not None:
                # The stored answer holds the secret sealed, like the endpoint row.
                kept = {**answer, "secret": ctx.key_ring.seal(secret)}

                async def remember(session: AsyncSession) -> None:
                    await IdempotencyRepository(session).store_answer(scope, 201, kept)

                await ctx.runtime.writer.submit(remember)
            return JSONResponse(answer, status_code=201)
        earlier = outcome
    if earlier.body is None:
        raise Conflict(
            "Another request with this Idempotency-Key is in progress; retry shortly.",
            code="idempotency_key_in_use",
        )
    try:
        secret = ctx.key_ring.open(str(earlier.body["secret"]))
    except SecretUnavailable as error:
        raise Conflict(
            f"The webhook {earlier.body.get('id')} was created by the first request with "
            "this Idempotency-Key, but the secret kept for its answer cannot be opened "
            f"({error.reason}). Rotate the webhook's secret to get a new one.",
            code="secret_unavailable",
        ) from None
    replay = {**earlier.body, "secret": secret}
    return JSONResponse(replay, status_code=earlier.status)


@router.get(
    "",
    response_model=Page[WebhookOut],
    summary="List webhook endpoints",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_webhooks(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[WebhookOut]:
    rows = await WebhookRepository(session).page(
        principal.account_id, principal.environment, limit=page.limit, after=page.after
    )
    shown, cursor = next_cursor(rows, page.limit)
    return Page[WebhookOut](data=[webhook_out(row) for row in shown], next_cursor=cursor)


@router.get(
    "/{id}",
    response_model=WebhookOut,
    summary="Read a webhook endpoint",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_webhook(id: WebhookId, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    endpoint = await WebhookRepository(session).get(principal.account_id, principal.environment, id)
    if endpoint is None:
        raise NotFound(f"There is no webhook {id!r} here.")
    return webhook_out(endpoint)


@router.patch(
    "/{id}",
    response_model=WebhookOut,
    summary="Update a webhook endpoint",
    responses=problem_responses(*AUTHENTICATED, 404, 422),
)
async def update_webhook(
    id: WebhookId, body: WebhookUpdate, principal: PrincipalDep, ctx: ContextDep
) -> WebhookOut:
    """Change the URL, events, description, or enable it again (pending deliveries
    resume at once) or disable it."""
    endpoint = await service.update_endpoint(
        ctx, principal.account_id, principal.environment, id, body
    )
    return webhook_out(endpoint)


@router.delete(
    "/{id}",
    status_code=204,
    summary="Delete a webhook endpoint",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def delete_webhook(id: WebhookId, principal: PrincipalDep, ctx: ContextDep) -> Response:
    await service.delete(ctx, principal.account_id, principal.environment, id)
    return Response(status_code=204)


@router.post(
    "/{id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Rotate the signing secret",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def rotate_secret(
    id: WebhookId, principal: PrincipalDep, ctx: ContextDep
) -> WebhookWithSecret:
    """A new secret; deliveries carry signatures by both the old and the new one until
    ``previousSecretExpiresAt``."""
    endpoint, secret = await service.rotate_secret(
        ctx, principal.account_id, principal.environment, id
    )
    return webhook_with_secret(endpoint, secret)


@router.post(
    "/{id}/test",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a webhook.test event",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def test_webhook(id: WebhookId, principal: PrincipalDep, ctx: ContextDep) -> DeliveryOut:
    delivery = await service.send_test(ctx, principal.account_id, principal.environment, id)
    return delivery_out(delivery)


@router.get(
    "/{id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="List deliveries with their attempts",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def list_deliveries(
    id: WebhookId,
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    event_type: Annotated[
        str | None, Query(alias="eventType", max_length=64, examples=["message.delivered"])
    ] = None,
    success: Annotated[bool | None, Query(examples=[False])] = None,
    since: Annotated[datetime | None, Query(examples=["2026-11-24T00:00:00Z"])] = None,
    until: Annotated[datetime | None, Query(examples=["2026-11-25T00:00:00Z"])] = None,
) -> Page[DeliveryOut]:
    """Newest first; each with every attempt (time, duration, status code or network
    error, the first bytes of the answer)."""
    repo = WebhookRepository(session)
    endpoint = await repo.get(principal.account_id, principal.environment, id)
    if endpoint is None:
        raise NotFound(f"There is no webhook {id!r} here.")
    filters = DeliveryFilters(event_type=event_type, success=success, since=since, until=until)
    rows = await repo.deliveries(endpoint.id, filters, limit=page.limit, after=page.after)
    shown, cursor = next_cursor(rows, page.limit)
    attempts = await repo.attempts_of([row.id for row in shown])
    return Page[DeliveryOut](
        data=[delivery_out(row, attempts[row.id]) for row in shown], next_cursor=cursor
    )


@router.post(
    "/{id}/deliveries/{dlv}/retry",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send a delivery again",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def retry_delivery(
    id: WebhookId, dlv: DeliveryId, principal: PrincipalDep, ctx: ContextDep
) -> DeliveryOut:
    """Due at once with a fresh retry schedule; the ``webhook-id`` stays the same."""
    delivery = await service.retry_delivery(
        ctx, principal.account_id, principal.environment, id, dlv
    )
    return delivery_out(delivery)


@router.post(
    "/{id}/deliveries/replay",
    response_model=ReplayOut,
    status_code=202,
    summary="Replay every failed delivery since a time",
    responses=problem_responses(*AUTHENTICATED, 404, 422),
)
async def replay_deliveries(
    id: WebhookId, body: ReplayRequest, principal: PrincipalDep, ctx: ContextDep
) -> ReplayOut:
    count = await service.replay_failed(
        ctx, principal.account_id, principal.environment, id, body.since
    )
    return ReplayOut(replayed=count)
