"""``POST /api/v4/iframes/whatsapp/chat-box``: a signed link to an embeddable chat box.

The answer's ``url`` opens the page of :mod:`tidings.widget.page` for one chat; it is
built from the request (scheme as a trusted proxy reported it, Host, and root path), so
it keeps the ``/sandbox`` prefix. ``iframe`` is a ready snippet with every attribute escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import Field

from tidings.api.deps import ContextDep, PrincipalDep
from tidings.channels.whatsapp.chats import MAX_CHAT_ID
from tidings.contacts.whatsapp import address_of
from tidings.core.errors import FieldError, Unprocessable
from tidings.docs_site.urls import site_roots
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel, ApiRequest
from tidings.widget.access import widget_codec
from tidings.widget.origins import MAX_ORIGINS, check_origins
from tidings.widget.page import PAGE_PATH

router = APIRouter(prefix="/api/v4/iframes", tags=["Chat widget"])


class ChatBoxRequest(ApiRequest):
    chat_id: str = Field(
        min_length=1,
        max_length=MAX_CHAT_ID,
        description="The contact's number (E.164, + optional), its WhatsApp user id, "
        "or a chat_ id.",
        examples=["+393331234567"],
    )
    expires_in: int | None = Field(
        default=None,
        ge=60,
        description="Lifetime of the link in seconds (default 3600), up to the deployment's "
        "maximum.",
        examples=[3600],
    )
    read_only: bool = Field(default=False, description="Show the chat without a composer.")
    theme: Literal["light", "dark"] = "light"
    allowed_origins: list[str] | None = Field(
        default=None,
        max_length=MAX_ORIGINS,
        description="Sites allowed to frame the chat box (https origins; http only for "
        "localhost). Without it any site may frame it, and the link is the only secret.",
        examples=[["https://shop.example.com"]],
    )


class ChatBoxOut(ApiModel):
    url: str = Field(
        examples=["https://api.example.com/widget/whatsapp/chat-box?token=eyJ..."],
        description="The chat box page; whoever holds it can use it until it expires.",
    )
    iframe: str = Field(
        examples=[
            '<iframe src="https://api.example.com/widget/whatsapp/chat-box?token=eyJ..." '
            'title="WhatsApp chat" width="360" height="640"></iframe>'
        ],
    )
    expires_at: datetime


@router.post(
    "/whatsapp/chat-box",
    response_model=ChatBoxOut,
    summary="Create an embeddable WhatsApp chat box",
    responses=problem_responses(*AUTHENTICATED),
)
async def create_chat_box(
    body: ChatBoxRequest, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> ChatBoxOut:
    """A link (and a ready ``<iframe>``) to a page that shows one WhatsApp conversation,
    updates live and, unless ``readOnly``, sends replies (or approved templates when the
    window is closed). The link opens that chat only, in this environment, until it
    expires; ``allowedOrigins`` limits which sites may frame it."""
    settings = ctx.settings.widget
    lifetime = body.expires_in or settings.default_expires_in_seconds
    if lifetime > settings.max_expires_in_seconds:
        maximum = settings.max_expires_in_seconds
        raise Unprocessable(
            f"expiresIn may be at most {maximum} seconds on this deployment.",
            errors=[FieldError("expiresIn", "less_than_equal", f"At most {maximum}.")],
        )
    origins, errors = check_origins(body.allowed_origins or [])
    if errors:
        raise Unprocessable(
            "allowedOrigins has entries that are not origins: "
            + ", ".join(error.field for error in errors)
            + ".",
            errors=errors,
        )
    provider = await ctx.runtime.providers.find(
        principal.account_id, principal.environment, "whatsapp"
    )
    async with ctx.sessions() as session:
        contact = await address_of(
            session,
            principal.account_id,
            principal.environment,
            body.chat_id,
            extra_valid=provider.test_numbers if provider else frozenset(),
        )
    token, claims = widget_codec(ctx).issue(
        user_id=principal.user_id,
        account_id=principal.account_id,
        environment=principal.environment,
        contact=contact,
        read_only=body.read_only,
        theme=body.theme,
        allowed_origins=origins,
        lifetime=lifetime,
    )
    roots = site_roots(request.scope)
    url = f"{roots.origin}{roots.current_root}{PAGE_PATH}?{urlencode({'token': token})}"
    iframe = (
        f'<iframe src="{escape(url)}" title="{escape("WhatsApp chat with " + contact)}" '
        'width="360" height="640" referrerpolicy="no-referrer"></iframe>'
    )
    return ChatBoxOut(url=url, iframe=iframe, expires_at=claims.expires_at)
