"""Bulk endpoints: ``POST /api/v4/sms/bulk``, ``/api/v4/email/bulk`` and
``/api/v4/whatsapp/bulk`` (spec section 8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.bulk_body import bulk_body
from tidings.api.deps import ContextDep, Principal, PrincipalDep
from tidings.api.sending import tenant_of
from tidings.bulk.channels import (
    ChannelRules,
    EmailContentSpec,
    email_rules,
    opted_out,
    sms_rules,
    suppressed,
)
from tidings.bulk.schemas import (
    BulkAnswer,
    EmailBulkRequest,
    SmsBulkRequest,
    WhatsAppBulkRequest,
)
from tidings.bulk.service import BulkFlow, BulkSpec, PrepareRules
from tidings.bulk.whatsapp import free_form_rules, template_rules
from tidings.channels.email.addresses import parse_mailbox
from tidings.channels.email.mime import validate_custom_headers
from tidings.contacts.whatsapp import aliases, moved
from tidings.context import AppContext
from tidings.core.collection import paused_during_request
from tidings.core.errors import FieldError, Unprocessable
from tidings.domains.sending import require_verified_sender
from tidings.http.json_body import documented_body
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.idempotency.service import scope_of
from tidings.messages.rules.sms import check_sender
from tidings.templates.service import approved_template
from tidings.tracking.tokens import signer_for

router = APIRouter(prefix="/api/v4", tags=["Bulk"])


BULK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": BulkAnswer, "description": "Every accepted message is stored."},
    **problem_responses(*AUTHENTICATED, 402, 404, 409, 413, 503),
}


async def _accept(
    ctx: AppContext,
    request: Request,
    principal: Principal,
    spec: BulkSpec,
    prepare: PrepareRules,
) -> JSONResponse:
    key = await scope_of(request, principal.account_id, principal.environment.value)
    answer = await BulkFlow(ctx, tenant_of(principal)).run(spec, prepare, key=key)
    return JSONResponse(answer.body, status_code=answer.status)


@router.post(
    "/sms/bulk",
    status_code=202,
    response_model=BulkAnswer,
    summary="Send an SMS to many recipients",
    responses=BULK_RESPONSES,
    dependencies=[Depends(paused_during_request)],
    openapi_extra=documented_body(SmsBulkRequest),
)
async def sms_bulk(
    body: Annotated[SmsBulkRequest, Depends(bulk_body(SmsBulkRequest))],
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """One text with ``{{variable}}`` placeholders, rendered per recipient. Invalid,
    opted-out and duplicate recipients are counted and listed, never sent; a recipient
    missing a variable the text uses is rejected (``missing_variable``)."""
    sender = check_sender(body.from_)

    async def prepare(session: AsyncSession) -> ChannelRules:
        provider = await ctx.runtime.providers.require(
            principal.account_id, principal.environment, "sms"
        )
        return sms_rules(
            settings=ctx.settings,
            body=body.body,
            validity_period=body.validity_period,
            extra_valid=provider.test_numbers,
            opted=await opted_out(session, principal.account_id, principal.environment, "sms"),
        )

    return await _accept(ctx, request, principal, BulkSpec("sms", sender, body), prepare)


@router.post(
    "/email/bulk",
    status_code=202,
    response_model=BulkAnswer,
    summary="Send an email to many recipients",
    responses=BULK_RESPONSES,
    dependencies=[Depends(paused_during_request)],
    openapi_extra=documented_body(EmailBulkRequest),
)
async def email_bulk(
    body: Annotated[EmailBulkRequest, Depends(bulk_body(EmailBulkRequest))],
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Subject, text and HTML with ``{{variable}}`` placeholders (values are escaped in
    the HTML). Bulk mail carries an unsubscribe link and ``List-Unsubscribe``;
    suppressed addresses are rejected (``recipient_suppressed``)."""
    if not body.text and not body.html:
        raise Unprocessable(
            "An email needs text, html, or both.",
            errors=[FieldError("text", "missing", "Give text or html.")],
        )
    sender = parse_mailbox(body.from_, "from")
    if body.reply_to:
        parse_mailbox(body.reply_to, "replyTo")
    validate_custom_headers(body.headers or {})

    async def prepare(session: AsyncSession) -> ChannelRules:
        await ctx.runtime.providers.require(principal.account_id, principal.environment, "email")
        await require_verified_sender(
            session, ctx.runtime.providers, principal.account_id, principal.environment, body.from_
        )
        return email_rules(
            settings=ctx.settings,
            spec=EmailContentSpec(
                sender=body.from_,
                subject=body.subject,
                text=body.text,
                html=body.html,
                reply_to=body.reply_to,
                headers=body.headers,
                tags=body.tags,
                attachments=[item.model_dump(by_alias=True) for item in body.attachments],
                tracking=body.tracking.model_dump(),
            ),
            base_url=str(request.base_url),
            signer=signer_for(ctx.tokens),
            suppressed_addresses=await suppressed(
                session, principal.account_id, principal.environment
            ),
        )

    spec = BulkSpec("email", sender.formatted, body)
    return await _accept(ctx, request, principal, spec, prepare)


@router.post(
    "/whatsapp/bulk",
    status_code=202,
    response_model=BulkAnswer,
    summary="Send a WhatsApp template (or text) to many recipients",
    responses=BULK_RESPONSES,
    dependencies=[Depends(paused_during_request)],
    openapi_extra=documented_body(WhatsAppBulkRequest),
)
async def whatsapp_bulk(
    body: Annotated[WhatsAppBulkRequest, Depends(bulk_body(WhatsAppBulkRequest))],
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """A template notification per recipient (any window), its parameters holding
    ``{{variable}}`` placeholders filled per recipient; or free-form ``body`` text,
    which only contacts whose 24-hour window is open receive (the others are rejected
    with ``outside_customer_service_window``)."""
    if (body.template is None) == (body.body is None):
        raise Unprocessable(
            "Give either template (a notification) or body (free-form text).",
            errors=[FieldError("template", "missing", "Give template or body.")],
        )

    async def prepare(session: AsyncSession) -> ChannelRules:
        provider = await ctx.runtime.providers.require(
            principal.account_id, principal.environment, "whatsapp"
        )
        opted = await opted_out(session, principal.account_id, principal.environment, "whatsapp")
        if body.template is not None:
            template = await approved_template(
                session,
                principal.account_id,
                principal.environment,
                body.template.name,
                body.template.language,
            )
            return template_rules(
                settings=ctx.settings,
                template=template,
                parameters=body.template.parameters,
                extra_valid=provider.test_numbers,
                opted=opted,
                known=await aliases(session, principal.account_id, principal.environment),
                targets=await moved(session, principal.account_id, principal.environment),
            )
        assert body.body is not None
        return await free_form_rules(
            session=session,
            settings=ctx.settings,
            clock=ctx.clock,
            provider=provider,
            account_id=principal.account_id,
            environment=principal.environment,
            body=body.body,
            opted=opted,
        )

    spec = BulkSpec("whatsapp", None, body)
    return await _accept(ctx, request, principal, spec, prepare)
