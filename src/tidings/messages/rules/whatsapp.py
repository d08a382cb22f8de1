"""The rules of a free-form WhatsApp send: contact, content, reply, the window.

The contact is a phone number or a business-scoped user id, resolved to its
conversation's address (:mod:`tidings.contacts.whatsapp`). The window is
the contact's last message plus 24 hours, unless WhatsApp refused a free-form
message since then because it found the window closed (131047): then it stays
closed until the contact writes again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.whatsapp.window import InboundKnowledge, Window, window_from
from tidings.contacts.whatsapp import address_of, delivery_target
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Unprocessable
from tidings.messages.conversations import ConversationRepository
from tidings.messages.drafts import Draft
from tidings.messages.repository import MessageRepository
from tidings.messages.rules.sms import check_not_opted_out
from tidings.providers.registry import Capabilities
from tidings.settings import Settings

TEMPLATE_ENDPOINT = "/api/v4/whatsapp/notifications"


async def whatsapp_draft(
    session: AsyncSession,
    *,
    account_id: str,
    environment: Environment,
    provider: Capabilities,
    settings: Settings,
    clock: Clock,
    chat: str,
    body: str | None,
    media: dict[str, Any] | None,
    reply_to: str | None,
    preview_url: bool,
) -> Draft:
    contact = await address_of(
        session, account_id, environment, chat, extra_valid=provider.test_numbers
    )
    if not body and not media:
        raise Unprocessable(
            "A message needs a body, media, or both.",
            errors=[FieldError("body", "missing", "Give body or media.")],
        )
    repo = MessageRepository(session)
    content: dict[str, Any] = {"previewUrl": preview_url}
    if media:
        content["media"] = media
    if reply_to:
        replied = await repo.get(account_id, environment, reply_to)
        if replied is None or replied.channel != "whatsapp":
            raise Unprocessable(
                f"replyTo names no WhatsApp message of this account: {reply_to!r}.",
                errors=[FieldError("replyTo", "not_found", "No such WhatsApp message.")],
            )
        content["replyTo"] = reply_to
        content["replyToProviderId"] = replied.provider_message_id
    await check_not_opted_out(session, account_id, environment, "whatsapp", contact)
    window = await customer_window(
        session, provider, clock, account_id=account_id, environment=environment, contact=contact
    )
    if not window.open:
        if window.last_inbound_at is None:
            since = "has never written in"
        elif window.closed_by_whatsapp_at is not None:
            since = (
                "has not written in since WhatsApp refused a free-form message to it as "
                f"outside the window at {window.closed_by_whatsapp_at.isoformat()}"
            )
        else:
            since = f"last wrote in at {window.last_inbound_at.isoformat()}"
        raise Unprocessable(
            f"{contact} {since}, so the 24-hour customer service window is closed: "
            f"send an approved template with POST {TEMPLATE_ENDPOINT}.",
            code="outside_customer_service_window",
            extra={"templateEndpoint": TEMPLATE_ENDPOINT},
        )
    # A contact who changed its number or user id is reached at the new one.
    target = await delivery_target(session, account_id, environment, contact)
    if target is not None:
        content["deliverTo"] = target
    return Draft(
        channel="whatsapp",
        to=contact,
        sender=None,
        body=body,
        content=content,
        cost=settings.prices.whatsapp_message,
    )


async def customer_window(
    session: AsyncSession,
    provider: InboundKnowledge,
    clock: Clock,
    *,
    account_id: str,
    environment: Environment,
    contact: str,
) -> Window:
    return await window_from(
        await MessageRepository(session).last_inbound_at(
            account_id, environment, "whatsapp", contact
        ),
        provider,
        clock,
        contact=contact,
        closed_at=await ConversationRepository(session).window_closed_at(
            account_id, environment, contact
        ),
    )
