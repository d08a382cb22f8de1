"""What the chat box is shown: a narrow view of messages, and the chat's window state.

The page gets less than the ``/api/v4`` message resource: no credits, provider ids or
event lists, only what a conversation view draws. Both the history endpoint and the
live stream use these shapes, so the script renders one kind of object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tidings.channels.whatsapp.window import Window, window_from
from tidings.context import AppContext
from tidings.http.schemas import ApiModel
from tidings.messages.conversations import ConversationRepository
from tidings.messages.models import Message
from tidings.messages.repository import MessageRepository
from tidings.messages.status import Status
from tidings.widget.tokens import WidgetClaims


class WidgetError(ApiModel):
    code: str
    message: str


class WidgetMessage(ApiModel):
    id: str
    direction: Literal["outbound", "inbound"]
    status: Status
    body: str | None = None
    template: str | None = Field(default=None, description="The template's name, if one.")
    media_type: str | None = None
    error: WidgetError | None = None
    created_at: datetime
    updated_at: datetime


class WindowState(ApiModel):
    open: bool
    expires_at: datetime | None = None
    last_inbound_at: datetime | None = None


def widget_message(message: Message) -> WidgetMessage:
    content: dict[str, Any] = message.content or {}
    template = content.get("template")
    media = content.get("media")
    return WidgetMessage(
        id=message.id,
        direction="inbound" if message.direction == "inbound" else "outbound",
        status=Status(message.status),
        body=message.body,
        template=str(template.get("name")) if isinstance(template, dict) else None,
        media_type=str(media.get("type")) if isinstance(media, dict) else None,
        error=WidgetError(code=message.error_code, message=message.error_message or "")
        if message.error_code
        else None,
        created_at=message.created_at,
        updated_at=message.updated_at,
    )


async def window_state(ctx: AppContext, claims: WidgetClaims) -> WindowState:
    """The 24-hour window of the token's chat, by the rule the send path applies."""
    provider = await ctx.runtime.providers.find(claims.account_id, claims.environment, "whatsapp")
    async with ctx.sessions() as session:
        last = await MessageRepository(session).last_inbound_at(
            claims.account_id, claims.environment, "whatsapp", claims.contact
        )
        # WhatsApp refusing a message as outside the window closes it (131047).
        closed_at = await ConversationRepository(session).window_closed_at(
            claims.account_id, claims.environment, claims.contact
        )
    if provider is None:
        window = Window(last, None, False)
    else:
        window = await window_from(
            last, provider, ctx.clock, contact=claims.contact, closed_at=closed_at
        )
    return WindowState(
        open=window.open, expires_at=window.expires_at, last_inbound_at=window.last_inbound_at
    )
