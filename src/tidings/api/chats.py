"""WhatsApp conversations: ``GET /api/v4/whatsapp/chats`` and
``GET /api/v4/whatsapp/chats/{id}/messages``.

Conversations are derived from the messages (see
:mod:`tidings.messages.conversations`, which also states the unread rule);
the window fields come from the same rule the send endpoint applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.channels.whatsapp.chats import MAX_CHAT_ID, chat_id
from tidings.channels.whatsapp.window import Window, window_from
from tidings.contacts.whatsapp import address_of, known
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel
from tidings.messages.conversations import ConversationRepository
from tidings.messages.repository import MessageRepository
from tidings.messages.schemas import MessageOut, message_out
from tidings.messages.status import Status

router = APIRouter(prefix="/api/v4/whatsapp", tags=["WhatsApp"])


class LastMessage(ApiModel):
    id: str = Field(examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    direction: Literal["outbound", "inbound"]
    body: str | None = Field(default=None, examples=["Hello!"])
    status: Status
    at: datetime


class ChatOut(ApiModel):
    id: str = Field(examples=["chat_393331234567"])
    contact: str = Field(
        description="The contact's address: its number, or its WhatsApp user id when "
        "WhatsApp gave no number the first time it wrote in.",
        examples=["+393331234567"],
    )
    phone: str | None = Field(
        default=None, description="The contact's number, when known.", examples=["+393331234567"]
    )
    user_id: str | None = Field(
        default=None,
        description="The contact's business-scoped WhatsApp user id, when WhatsApp gave one.",
        examples=["US.13491208655302741918"],
    )
    username: str | None = Field(default=None, description="The contact's WhatsApp username.")
    last_message: LastMessage
    last_activity_at: datetime
    unread_count: int = Field(
        description="The contact's messages newer than the last one sent to it.", examples=[1]
    )
    window_open: bool = Field(description="Whether free-form messages may be sent now.")
    window_expires_at: datetime | None = Field(
        default=None, description="24 hours after the contact's last message; null if never."
    )


@router.get(
    "/chats",
    response_model=Page[ChatOut],
    summary="List WhatsApp conversations",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_chats(
    principal: PrincipalDep,
    session: SessionDep,
    ctx: ContextDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ChatOut]:
    """One entry per contact, newest activity first: the last message either way, the
    unread count (the contact's messages after your last reply) and the 24-hour
    customer service window."""
    rows = await ConversationRepository(session).page(
        principal.account_id, principal.environment, limit=page.limit, after=page.after
    )
    shown = rows[: page.limit]
    cursor = shown[-1].last_message_id if len(rows) > page.limit else None
    last = {
        message.id: message
        for message in await MessageRepository(session).get_many(
            [row.last_message_id for row in shown]
        )
    }
    provider = await ctx.runtime.providers.find(
        principal.account_id, principal.environment, "whatsapp"
    )
    profiles = await known(
        session, principal.account_id, principal.environment, [row.contact for row in shown]
    )
    chats = []
    for row in shown:
        message = last[row.last_message_id]
        if provider is not None:
            window = await window_from(
                row.last_inbound_at,
                provider,
                ctx.clock,
                contact=row.contact,
                closed_at=row.window_closed_at,
            )
        else:
            window = Window(row.last_inbound_at, None, False)
        profile = profiles.get(row.contact)
        chats.append(
            ChatOut(
                id=chat_id(row.contact),
                contact=row.contact,
                phone=(profile.phone if profile else None)
                or (row.contact if row.contact.startswith("+") else None),
                user_id=profile.user_id if profile else None,
                username=profile.username if profile else None,
                last_message=LastMessage(
                    id=message.id,
                    direction=message.direction,
                    body=message.body,
                    status=Status(message.status),
                    at=message.created_at,
                ),
                last_activity_at=message.created_at,
                unread_count=row.unread,
                window_open=window.open,
                window_expires_at=window.expires_at,
            )
        )
    return Page[ChatOut](data=chats, next_cursor=cursor)


@router.get(
    "/chats/{id}/messages",
    response_model=Page[MessageOut],
    summary="A WhatsApp conversation's messages",
    responses=problem_responses(*AUTHENTICATED),
)
async def chat_messages(
    principal: PrincipalDep,
    session: SessionDep,
    ctx: ContextDep,
    page: Annotated[PageParams, Depends(page_params)],
    id: str = Path(
        max_length=MAX_CHAT_ID,
        description="The contact's number (E.164, + optional), its WhatsApp user id "
        "(US.13491208655302741918) or a chat_ id.",
        examples=["+393331234567"],
    ),
) -> Page[MessageOut]:
    """Both directions, newest first. A contact with no messages has an empty history."""
    provider = await ctx.runtime.providers.find(
        principal.account_id, principal.environment, "whatsapp"
    )
    contact = await address_of(
        session,
        principal.account_id,
        principal.environment,
        id,
        extra_valid=provider.test_numbers if provider else frozenset(),
    )
    rows = await ConversationRepository(session).messages(
        principal.account_id, principal.environment, contact, limit=page.limit, after=page.after
    )
    shown, cursor = next_cursor(list(rows), page.limit)
    return Page[MessageOut](data=[message_out(row) for row in shown], next_cursor=cursor)
