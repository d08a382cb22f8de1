"""Template notifications: ``POST /api/v4/whatsapp/notifications``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep
from tidings.api.sending import send
from tidings.api.sms import SEND_RESPONSES
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.messages.drafts import Draft
from tidings.messages.schemas import MessageOut
from tidings.templates.schemas import NotificationRequest
from tidings.templates.service import notification_draft

router = APIRouter(prefix="/api/v4/whatsapp", tags=["WhatsApp"])


@router.post(
    "/notifications",
    response_model=MessageOut,
    summary="Send a WhatsApp template notification",
    responses={**SEND_RESPONSES, **problem_responses(*AUTHENTICATED, 404)},
)
async def send_notification(
    body: NotificationRequest, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> JSONResponse:
    """An approved template with its parameters, allowed outside the 24-hour
    customer service window. Unknown name and language: 404 ``template_not_found``;
    not approved: 422 ``template_not_approved``; parameters that do not fit the
    template: 422 ``template_params_mismatch``, naming the component, how many it
    takes and how many were given. The message's ``body`` is the filled text."""

    async def prepare(session: AsyncSession) -> Draft:
        provider = await ctx.runtime.providers.require(
            principal.account_id, principal.environment, "whatsapp"
        )
        return await notification_draft(
            session,
            account_id=principal.account_id,
            environment=principal.environment,
            provider=provider,
            settings=ctx.settings,
            clock=ctx.clock,
            to=body.to,
            name=body.template.name,
            language=body.template.language,
            parameters=body.template.parameters,
        )

    return await send(ctx, request, principal, prepare)
