"""SMS endpoints: ``POST /api/v4/sms/send`` and ``GET /api/v4/sms/reports/{id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.api.direct_route import DirectRoute
from tidings.api.messages import MessageId, load_message
from tidings.api.sending import send
from tidings.bulk.progress import batch_out
from tidings.bulk.repository import BatchRepository
from tidings.core.errors import NotFound
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel, ApiRequest
from tidings.messages.drafts import Draft
from tidings.messages.rules.sms import sms_draft
from tidings.messages.schemas import MessageError, MessageEventOut, MessageOut
from tidings.messages.status import Status

# The send is called without FastAPI's per-request dependency walk (same answers).
router = APIRouter(prefix="/api/v4/sms", tags=["SMS"], route_class=DirectRoute)


class SmsSendRequest(ApiRequest):
    to: str = Field(min_length=1, max_length=32, examples=["+393331234567"])
    body: str = Field(min_length=1, max_length=10_000, examples=["Your code is 123456"])
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=16,
        description="Sender id: up to 11 letters/digits, or a number.",
        examples=["Tidings"],
    )
    scheduled_at: datetime | None = Field(default=None, examples=["2026-11-24T08:00:00Z"])
    validity_period: int | None = Field(
        default=None, ge=60, le=604800, description="Seconds the network keeps trying."
    )


SEND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored and submitted: the status shows the verdict."},
    202: {"model": MessageOut, "description": "Stored; delivery goes on in the background."},
    **problem_responses(*AUTHENTICATED, 409, 402, 503),
}


@router.post(
    "/send",
    response_model=MessageOut,
    summary="Send an SMS",
    responses=SEND_RESPONSES,
)
async def send_sms(
    body: SmsSendRequest, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> JSONResponse:
    """Store the SMS, submit it, and answer with its verdict (``sent`` or ``failed``)
    within the wait bound, else ``queued``. ``Prefer: respond-async`` answers at once
    (202). The answer shows ``segments``, ``encoding`` and ``credits``."""

    async def prepare(session: AsyncSession) -> Draft:
        provider = await ctx.runtime.providers.require(
            principal.account_id, principal.environment, "sms"
        )
        return await sms_draft(
            session,
            account_id=principal.account_id,
            environment=principal.environment,
            provider=provider,
            settings=ctx.settings,
            clock=ctx.clock,
            to=body.to,
            body=body.body,
            sender=body.from_,
            scheduled_at=body.scheduled_at,
            validity_period=body.validity_period,
        )

    return await send(ctx, request, principal, prepare)


class SmsReport(ApiModel):
    id: str
    status: Status
    to: str
    segments: int | None
    encoding: str | None
    credits: float
    provider_message_id: str | None
    error: MessageError | None
    events: list[MessageEventOut]


class SmsBatchReport(ApiModel):
    id: str
    status: str = Field(examples=["completed"])
    total: int
    accepted: int
    rejected: int
    duplicates: int
    credits: float
    counts: dict[str, int] = Field(description="Messages per status; they add up to accepted.")
    pending: int
    finished_at: datetime | None = None


@router.get(
    "/reports/{id}",
    response_model=SmsReport | SmsBatchReport,
    summary="Delivery report of an SMS or of an SMS batch",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def sms_report(
    id: MessageId, principal: PrincipalDep, session: SessionDep, ctx: ContextDep
) -> SmsReport | SmsBatchReport:
    """For a ``msg_`` id: status, every status change with its time, segments,
    credits, the provider's id and error of one SMS. For a ``bat_`` id: the counts
    per status of the whole batch."""
    if id.startswith("bat_"):
        batch = await BatchRepository(session).get(principal.account_id, principal.environment, id)
        if batch is None or batch.channel != "sms":
            raise NotFound(f"There is no SMS batch {id!r} here.")
        shown = batch_out(batch, await BatchRepository(session).counts(id), ctx.clock.now())
        return SmsBatchReport(**shown.model_dump(include=set(SmsBatchReport.model_fields)))
    message = await load_message(session, principal, id, channel="sms")
    return SmsReport(
        id=message.id,
        status=message.status,
        to=message.to,
        segments=message.segments,
        encoding=message.encoding,
        credits=message.credits,
        provider_message_id=message.provider_message_id,
        error=message.error,
        events=message.events or [],
    )
