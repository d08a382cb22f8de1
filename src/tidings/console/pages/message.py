"""``/console/messages/{id}``: one message and its whole history.

The page shows the message (text as text, never as HTML), then its timeline: every
status and event with its time, the provider that took it and the provider's id,
errors in words, and the webhook deliveries it caused with each attempt. The timeline
is also served alone (``.../timeline``) for the page's script, which refreshes it
until the message is settled and its deliveries are done.

In the sandbox, an email's rendered copies (what the simulated provider "sent") are
shown each in an ``<iframe sandbox>`` from ``.../emails/{emailId}``, which answers
the HTML under a policy of its own (:data:`~tidings.console.headers.EMAIL_PREVIEW_POLICY`).

Every read is scoped by the signed-in account and this environment: another
account's message, or this account's in the other environment, is a 404.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.api.sandbox_emails import SandboxEmailDetail, get_sandbox_email
from tidings.console import queries, timeline
from tidings.console.errors import PageNotFound
from tidings.console.headers import EMAIL_PREVIEW_POLICY
from tidings.console.paths import CONSOLE
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import ApiError
from tidings.messages.models import Message
from tidings.messages.repository import MessageRepository
from tidings.providers.schemas import ProviderOut
from tidings.webhooks.models import WebhookAttempt
from tidings.webhooks.repository import WebhookRepository

router = APIRouter(prefix=f"{CONSOLE}/messages", include_in_schema=False)

REFRESH_SECONDS = 2
# A message that has not changed for this long is not watched any more (a receipt
# that never comes must not keep a forgotten tab polling for ever).
WATCH_FOR = timedelta(days=1)
MAX_PROVIDERS = 200


@dataclass(frozen=True, slots=True)
class Timeline:
    message: Message
    entries: list[timeline.TimelineEntry]
    deliveries: list[queries.MessageDelivery]
    attempts: Mapping[str, list[WebhookAttempt]]
    provider: str | None
    live: bool


async def _message(session: AsyncSession, user: ConsoleUser, message_id: str) -> Message:
    message = await MessageRepository(session).get(
        user.account_id, user.environment, message_id[:64]
    )
    if message is None:
        raise PageNotFound(f"There is no message {message_id[:64]} in this {user.environment}.")
    return message


async def _timeline(
    ctx: AppContext, session: AsyncSession, user: ConsoleUser, message: Message
) -> Timeline:
    events = await MessageRepository(session).events(message.id)
    deliveries = await queries.deliveries_of_message(session, user.tenant, message.id)
    attempts = await WebhookRepository(session).attempts_of([d.delivery.id for d in deliveries])
    providers = {
        provider.id: provider
        for provider in await ctx.runtime.provider_service.page(
            user.tenant, after=None, limit=MAX_PROVIDERS
        )
    }
    watching = ctx.clock.now() - message.updated_at < WATCH_FOR
    pending = any(d.delivery.status == "pending" for d in deliveries)
    return Timeline(
        message=message,
        entries=timeline.entries(events, providers),
        deliveries=deliveries,
        attempts=attempts,
        provider=_provider_words(message, providers),
        live=watching and (pending or not timeline.is_settled(message)),
    )


def _provider_words(message: Message, providers: Mapping[str, ProviderOut]) -> str | None:
    said = timeline.provider_words(message.provider_id, providers)
    if said is None and message.provider:
        return message.provider
    return said


@router.get("/{message_id}")
async def message_page(
    message_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    message = await _message(session, user, message_id)
    emails: list[SandboxEmailDetail] = []
    if message.channel == "email" and user.environment == Environment.SANDBOX:
        for email_id in await queries.sandbox_emails_of_message(session, user.tenant, message.id):
            emails.append(await get_sandbox_email(user.principal(), session, email_id))
    return render(
        request,
        "message.html",
        user=user,
        # The message exists in this environment only: the switch leads to the list.
        switch_path="/messages",
        message=message,
        subject=(message.content or {}).get("subject"),
        timeline=await _timeline(ctx, session, user, message),
        emails=emails,
        refresh_seconds=REFRESH_SECONDS,
    )


@router.get("/{message_id}/timeline")
async def message_timeline(
    message_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    message = await _message(session, user, message_id)
    return render(
        request,
        "message_timeline.html",
        user=user,
        message=message,
        timeline=await _timeline(ctx, session, user, message),
        refresh_seconds=REFRESH_SECONDS,
    )


@router.get("/{message_id}/emails/{email_id}")
async def sandbox_email(
    message_id: str, email_id: str, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    """The HTML the sandbox "sent", for an ``<iframe sandbox>`` of the message page:
    no script, no request anywhere, framed by the console only."""
    message = await _message(session, user, message_id)
    try:
        email = await get_sandbox_email(user.principal(), session, email_id[:64])
    except ApiError:
        raise PageNotFound(f"There is no sandbox email {email_id[:64]} here.") from None
    if email.message_id != message.id:
        raise PageNotFound(f"The email {email_id[:64]} is not one of this message.")
    body = email.html
    if body is None:
        body = f"<pre>{html.escape(email.text or '')}</pre>"
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": EMAIL_PREVIEW_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )
