"""The chat box's own API, under ``/widget/api``: only chat-box tokens get in.

``GET chat`` (who, window, expiry), ``GET messages`` (the history, newest first,
cursor pages) and ``POST messages`` (a reply). Everything is scoped by the token:
its account, its environment and its one contact, never by anything the request
names. Replies go through the same send path as ``POST /api/v4/whatsapp/chats/{id}/
message``, so the window, opt-outs, idempotency and the webhooks behave the same.
Templates are in :mod:`tidings.widget.templates`, the live stream in
:mod:`tidings.widget.live`. None of these routes is in the OpenAPI document: they
are the page's, not an integration surface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.api.sending import as_response, send_answer
from tidings.channels.whatsapp.chats import chat_id
from tidings.context import AppContext
from tidings.core.errors import Forbidden
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.schemas import ApiModel
from tidings.messages.conversations import ConversationRepository
from tidings.messages.drafts import Draft
from tidings.messages.models import Message
from tidings.messages.repository import MessageRepository
from tidings.messages.rules.whatsapp import whatsapp_draft
from tidings.messages.service import SendAnswer
from tidings.widget.access import BearerWidgetDep, widget_tenant
from tidings.widget.page import API_PATH
from tidings.widget.tokens import WidgetClaims
from tidings.widget.views import WidgetMessage, WindowState, widget_message, window_state

router = APIRouter(prefix=API_PATH, include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}


class ChatInfo(ApiModel):
    chat_id: str
    contact: str
    read_only: bool
    theme: str
    expires_at: datetime
    window: WindowState


class ReplyRequest(ApiModel):
    body: str = Field(min_length=1, max_length=4096)


def require_writable(claims: WidgetClaims) -> None:
    if claims.read_only:
        raise Forbidden("This chat box is read-only: it cannot send messages.")


@router.get("/chat", response_model=ChatInfo)
async def chat_info(claims: BearerWidgetDep, ctx: ContextDep) -> JSONResponse:
    info = ChatInfo(
        chat_id=chat_id(claims.contact),
        contact=claims.contact,
        read_only=claims.read_only,
        theme=claims.theme,
        expires_at=claims.expires_at,
        window=await window_state(ctx, claims),
    )
    return JSONResponse(info.model_dump(mode="json", by_alias=True), headers=NO_STORE)


@router.get("/messages", response_model=Page[WidgetMessage])
async def history(
    claims: BearerWidgetDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> JSONResponse:
    rows: list[Message] = list(
        await ConversationRepository(session).messages(
            claims.account_id,
            claims.environment,
            claims.contact,
            limit=page.limit,
            after=page.after,
        )
    )
    shown, cursor = next_cursor(rows, page.limit)
    answer = Page[WidgetMessage](data=[widget_message(row) for row in shown], next_cursor=cursor)
    return JSONResponse(answer.model_dump(mode="json", by_alias=True), headers=NO_STORE)


async def as_view(ctx: AppContext, claims: WidgetClaims, answer: SendAnswer) -> JSONResponse:
    """The send path's answer (the full message resource) as the page's message view."""
    response = as_response(answer)
    if answer.status >= 300:
        return response
    message_id = str(answer.body["id"])
    async with ctx.sessions() as session:
        message = await MessageRepository(session).get(
            claims.account_id, claims.environment, message_id
        )
    if message is None:  # pragma: no cover - the send path answered with a stored id
        return response
    view = widget_message(message).model_dump(mode="json", by_alias=True)
    return JSONResponse(view, status_code=response.status_code, headers=NO_STORE)


@router.post("/messages", response_model=WidgetMessage)
async def reply(
    body: ReplyRequest, request: Request, claims: BearerWidgetDep, ctx: ContextDep
) -> JSONResponse:
    """A free-form reply to the token's contact (422 outside the 24-hour window)."""
    require_writable(claims)

    async def prepare(session: AsyncSession) -> Draft:
        provider = await ctx.runtime.providers.require(
            claims.account_id, claims.environment, "whatsapp"
        )
        return await whatsapp_draft(
            session,
            account_id=claims.account_id,
            environment=claims.environment,
            provider=provider,
            settings=ctx.settings,
            clock=ctx.clock,
            chat=claims.contact,
            body=body.body,
            media=None,
            reply_to=None,
            preview_url=False,
        )

    answer = await send_answer(ctx, request, widget_tenant(claims), prepare)
    return await as_view(ctx, claims, answer)
