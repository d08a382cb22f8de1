"""Email endpoint: ``POST /api/v4/email/send``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep
from tidings.api.sending import send
from tidings.api.sms import SEND_RESPONSES
from tidings.channels.email.addresses import parse_recipients
from tidings.contacts.suppressions import SuppressionRepository, normalize
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Unprocessable
from tidings.domains.sending import require_verified_sender
from tidings.http.schemas import ApiRequest
from tidings.messages.drafts import Draft
from tidings.messages.email_schemas import EmailAttachment, EmailTracking
from tidings.messages.rules.email import email_draft
from tidings.messages.schemas import MessageOut
from tidings.tracking.tokens import signer_for

router = APIRouter(prefix="/api/v4/email", tags=["Email"])


class EmailSendRequest(ApiRequest):
    to: str | list[str] = Field(examples=["ada@example.com"])
    from_: str = Field(alias="from", max_length=320, examples=["News <news@yourdomain.com>"])
    subject: str = Field(min_length=1, max_length=998, examples=["Your order has shipped"])
    text: str | None = Field(
        default=None, max_length=1_000_000, examples=["Your order #1234 is on its way."]
    )
    html: str | None = Field(default=None, max_length=2_000_000)
    reply_to: str | None = Field(default=None, max_length=320)
    cc: str | list[str] | None = None
    bcc: str | list[str] | None = None
    headers: dict[str, str] | None = Field(default=None, examples=[{"X-Campaign": "nov"}])
    tags: list[str] = Field(default_factory=list, max_length=20)
    attachments: list[EmailAttachment] = Field(default_factory=list, max_length=20)
    tracking: EmailTracking = Field(default_factory=EmailTracking)


@router.post(
    "/send",
    response_model=MessageOut,
    summary="Send an email",
    responses=SEND_RESPONSES,
)
async def send_email(
    body: EmailSendRequest, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> JSONResponse:
    """A transactional email: text and/or HTML, cc, bcc, reply-to, custom headers, tags
    and base64 attachments. The answer shows the provider's verdict like every send."""

    async def prepare(session: AsyncSession) -> Draft:
        await ctx.runtime.providers.require(principal.account_id, principal.environment, "email")
        await require_verified_sender(
            session, ctx.runtime.providers, principal.account_id, principal.environment, body.from_
        )
        draft = email_draft(
            settings=ctx.settings,
            sender=body.from_,
            to=body.to,
            cc=body.cc,
            bcc=body.bcc,
            reply_to=body.reply_to,
            subject=body.subject,
            text=body.text,
            html=body.html,
            headers=body.headers,
            tags=body.tags,
            attachments=[item.model_dump(by_alias=True) for item in body.attachments],
            tracking=body.tracking.model_dump(),
            # The public URL as the client reached it (with /sandbox when used), so
            # the tracking links lead back to this deployment and environment.
            base_url=str(request.base_url),
            signer=signer_for(ctx.tokens),
        )
        await _refuse_suppressed(session, principal.account_id, principal.environment, body)
        return draft

    return await send(ctx, request, principal, prepare)


async def _refuse_suppressed(
    session: AsyncSession, account_id: str, environment: Environment, body: EmailSendRequest
) -> None:
    """422 ``recipient_suppressed`` when any recipient (to, cc, bcc) is on the
    suppression list: one query for all of them. Runs after the draft, so the
    addresses are known to parse."""
    fields = {"to": body.to, "cc": body.cc, "bcc": body.bcc}
    recipients = [
        (field, normalize(mailbox.address))
        for field, value in fields.items()
        if value
        for mailbox in parse_recipients(value, field)
    ]
    suppressed = set(
        await SuppressionRepository(session).suppressed(
            account_id, environment, [address for _, address in recipients]
        )
    )
    if suppressed:
        raise Unprocessable(
            "A recipient is on the suppression list (a hard bounce, complaint or "
            "unsubscribe); remove it with DELETE /api/v4/email/suppressions/{address}.",
            code="recipient_suppressed",
            errors=[
                FieldError(field, "recipient_suppressed", f"{address} is suppressed.")
                for field, address in recipients
                if address in suppressed
            ],
        )
