"""WhatsApp endpoints: ``POST /api/v4/whatsapp/chats/{id}/message``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field, HttpUrl
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep
from tidings.api.sending import send
from tidings.api.sms import SEND_RESPONSES
from tidings.channels.whatsapp.chats import MAX_CHAT_ID
from tidings.http.schemas import ApiRequest
from tidings.messages.drafts import Draft
from tidings.messages.rules.whatsapp import whatsapp_draft
from tidings.messages.schemas import MessageOut

router = APIRouter(prefix="/api/v4/whatsapp", tags=["WhatsApp"])


class WhatsAppMedia(ApiRequest):
    # Audio and stickers take no caption on WhatsApp: their text follows them as a
    # second message (one message for Tidings, with one id).
    type: Literal["image", "document", "audio", "video", "sticker"]
    url: HttpUrl = Field(examples=["https://example.com/receipt.pdf"])
    caption: str | None = Field(default=None, max_length=1024)
    filename: str | None = Field(
        default=None, max_length=240, description="A document's file name, as shown."
    )


class WhatsAppMessageRequest(ApiRequest):
    body: str | None = Field(default=None, min_length=1, max_length=4096, examples=["Hello!"])
    media: WhatsAppMedia | None = None
    reply_to: str | None = Field(default=None, max_length=64, description="A message id.")
    preview_url: bool = Field(default=False, description="Show a preview of the first link.")


@router.post(
    "/chats/{id}/message",
    response_model=MessageOut,
    summary="Send a WhatsApp message",
    responses=SEND_RESPONSES,
)
async def send_whatsapp(
    body: WhatsAppMessageRequest,
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
    id: str = Path(
        max_length=MAX_CHAT_ID,
        description="The contact's number (E.164, + optional), its WhatsApp user id "
        "(US.13491208655302741918: a contact WhatsApp knows by no number) or a chat_ id.",
        examples=["+393331234567"],
    ),
) -> JSONResponse:
    """A free-form message, allowed within 24 hours of the contact's last message;
    outside that window the answer is 422 ``outside_customer_service_window`` and a
    template notification is the way. When WhatsApp refuses a message as outside
    the window (its clock wins), the window stays closed until the contact writes
    again."""

    async def prepare(session: AsyncSession) -> Draft:
        provider = await ctx.runtime.providers.require(
            principal.account_id, principal.environment, "whatsapp"
        )
        return await whatsapp_draft(
            session,
            account_id=principal.account_id,
            environment=principal.environment,
            provider=provider,
            settings=ctx.settings,
            clock=ctx.clock,
            chat=id,
            body=body.body,
            media=body.media.model_dump(mode="json", by_alias=True) if body.media else None,
            reply_to=body.reply_to,
            preview_url=body.preview_url,
        )

    return await send(ctx, request, principal, prepare)
