"""WhatsApp templates: ``GET`` and ``POST /api/v4/notifications/whatsapp/templates``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.core.environments import Environment
from tidings.core.errors import Conflict, ServiceUnavailable
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel
from tidings.idempotency.service import IdempotencyRepository, previous_answer, scope_of
from tidings.providers.errors import DeliveryError
from tidings.templates.models import Template
from tidings.templates.repository import TemplateRepository
from tidings.templates.schemas import TemplateCreate, TemplateOut, template_out, template_payload
from tidings.templates.service import create_template

router = APIRouter(prefix="/api/v4/notifications/whatsapp/templates", tags=["WhatsApp"])

StatusFilter = Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "all"]


@router.get(
    "",
    response_model=Page[TemplateOut],
    summary="List WhatsApp templates",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_templates(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        StatusFilter, Query(description="A status, or `all`.", examples=["APPROVED"])
    ] = "APPROVED",
    name: Annotated[str | None, Query(max_length=512, examples=["order_update"])] = None,
    language: Annotated[str | None, Query(max_length=16, examples=["en"])] = None,
) -> Page[TemplateOut]:
    """Approved templates unless ``status`` says otherwise, newest first, with the
    parameters each component takes. The sandbox starts with ``one_time_code``,
    ``order_update`` and ``spring_offer`` in English and Italian."""
    rows = await TemplateRepository(session).list(
        principal.account_id,
        principal.environment,
        status=None if status == "all" else status,
        name=name,
        language=language,
        after=page.after,
        limit=page.limit + 1,
    )
    shown, cursor = next_cursor(rows, page.limit)
    return Page[TemplateOut](data=[template_out(row) for row in shown], next_cursor=cursor)


@router.post(
    "",
    response_model=TemplateOut,
    status_code=201,
    summary="Submit a WhatsApp template",
    responses=problem_responses(*AUTHENTICATED, 409),
)
async def submit_template(
    body: TemplateCreate, request: Request, principal: PrincipalDep, ctx: ContextDep
) -> JSONResponse:
    """Checked against WhatsApp's rules (422 naming each broken one), then stored
    PENDING. The sandbox simulates WhatsApp's review: after
    ``TIDINGS_SANDBOX__TEMPLATE_REVIEW_SECONDS`` (1 s) it is APPROVED, or REJECTED
    when its name contains ``reject`` or its body is mostly parameters; a
    ``template.updated`` webhook follows. In production it is submitted to the
    WhatsApp Business account of the account's Cloud API provider and stays PENDING
    until Meta decides (a ``template.updated`` webhook follows); Meta's refusal
    answers 422 ``template_refused``. The same name and language again answers 409
    ``template_exists``."""
    scope = await scope_of(request, principal.account_id, principal.environment.value)
    async with ctx.sessions() as session:
        earlier = await previous_answer(session, scope, ctx.clock.now())
    if earlier is None:
        outcome = await create_template(
            ctx, principal.account_id, principal.environment, body, scope
        )
        if isinstance(outcome, Template):
            ctx.runtime.template_reviewer.wake()
            answer = template_payload(outcome)
            if scope is not None:

                async def remember(session: AsyncSession) -> None:
                    await IdempotencyRepository(session).store_answer(scope, 201, answer)

                await ctx.runtime.writer.submit(remember)
            return JSONResponse(answer, status_code=201)
        earlier = outcome
    if earlier.body is not None:
        return JSONResponse(earlier.body, status_code=earlier.status)
    if earlier.resource_id is not None:
        async with ctx.sessions() as session:
            template = await TemplateRepository(session).get(
                principal.account_id, principal.environment, earlier.resource_id
            )
        if template is not None:
            return JSONResponse(template_out(template).model_dump(mode="json", by_alias=True), 201)
    raise Conflict(
        "Another request with this Idempotency-Key is in progress; retry shortly.",
        code="idempotency_key_in_use",
    )


class SyncOut(ApiModel):
    catalogs: int = Field(description="Business accounts read.", examples=[1])
    changed: int = Field(description="Templates added or changed here.", examples=[3])


@router.post(
    "/sync",
    response_model=SyncOut,
    summary="Sync templates from the WhatsApp Business account",
    responses=problem_responses(*AUTHENTICATED, 503),
)
async def sync_templates(principal: PrincipalDep, ctx: ContextDep) -> SyncOut:
    """Production: reads every template of the business account of each WhatsApp
    Cloud API provider (every page, every status) and updates the list here; each
    template added or whose status changed fires ``template.updated``. Tidings also
    syncs when a provider is added, changed or checked, and every
    ``TIDINGS_PROVIDERS__TEMPLATE_SYNC_SECONDS``. A business account that cannot be
    read answers 503. The sandbox has nothing to sync."""
    if principal.environment != Environment.PRODUCTION:
        return SyncOut(catalogs=0, changed=0)
    try:
        catalogs, changed = await ctx.runtime.template_sync.sync_account(principal.account_id)
    except DeliveryError as error:
        raise ServiceUnavailable(
            f"The WhatsApp Business account's templates could not be read: {error.message}",
            code="provider_unavailable",
        ) from None
    return SyncOut(catalogs=catalogs, changed=changed)
