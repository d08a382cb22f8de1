"""WhatsApp bulk: a template notification per recipient, or free-form text to the
contacts whose 24-hour window is open.

Template parameters may hold ``{{variable}}`` placeholders, filled per
recipient before the template's own rules check them. The template and the
shape of its parameters are checked once for the whole request (an unknown or
unapproved template, or parameters that do not fit it, refuse the request);
what depends on a recipient (a missing variable, a value WhatsApp refuses)
rejects that recipient only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.channels import ChannelRules, opt_out_refusal, phone_normaliser
from tidings.bulk.planning import Normalise, PlannedMessage, Rejected
from tidings.bulk.rendering import Template as Text
from tidings.channels.whatsapp.chats import is_user_id
from tidings.channels.whatsapp.window import WINDOW, closed_since
from tidings.contacts.whatsapp import aliases, moved
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import ApiError
from tidings.messages.conversations import ConversationRepository
from tidings.messages.repository import MessageRepository
from tidings.providers.registry import Capabilities
from tidings.settings import Settings
from tidings.templates.models import Template
from tidings.templates.rendering import render
from tidings.templates.service import price_of, template_content
from tidings.templates.shape import shape_of


def fill(value: Any, variables: Mapping[str, str]) -> Any:
    """``value`` (text, or lists and objects of text) with placeholders filled."""
    if isinstance(value, str):
        return Text.compile(value).render(variables)
    if isinstance(value, list):
        return [fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, variables) for key, item in value.items()}
    return value


def whatsapp_normaliser(extra_valid: frozenset[str], known: Mapping[str, str]) -> Normalise:
    """A recipient is a number or a WhatsApp user id, resolved to its conversation's
    address (``known``: :func:`tidings.contacts.whatsapp.aliases`)."""
    phone = phone_normaliser(extra_valid)

    def normalise(to: str) -> str:
        given = to if is_user_id(to) else phone(to)
        return known.get(given, given)

    return normalise


def template_rules(
    *,
    settings: Settings,
    template: Template,
    parameters: dict[str, Any],
    extra_valid: frozenset[str],
    opted: frozenset[str],
    known: Mapping[str, str] | None = None,
    targets: Mapping[str, str] | None = None,
) -> ChannelRules:
    """``targets``: where a contact that changed its number or user id is reached
    now, by address (:func:`tidings.contacts.whatsapp.moved`)."""
    shape = shape_of(template.components)
    targets = targets or {}
    # Placeholders stand in for their values here: the shape is checked once.
    render(shape, parameters)
    price = price_of(settings.prices, template.category)

    def build(to: str, variables: Mapping[str, str]) -> PlannedMessage:
        rendered = render(shape, fill(parameters, variables))
        content = template_content(template, rendered)
        if to in targets:
            content["deliverTo"] = targets[to]
        return PlannedMessage(
            to=to,
            body=rendered.text,
            content=content,
            segments=None,
            encoding=None,
            cost=price,
        )

    return ChannelRules(
        whatsapp_normaliser(extra_valid, known or {}), build, opt_out_refusal(opted, "WhatsApp")
    )


async def free_form_rules(
    *,
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    provider: Capabilities,
    account_id: str,
    environment: Environment,
    body: str,
    opted: frozenset[str],
) -> ChannelRules:
    text = Text.compile(body)
    stored = await MessageRepository(session).last_inbound_by_contact(
        account_id, environment, "whatsapp"
    )
    # WhatsApp's refusals as outside the window (131047) close it until the contact writes.
    closed = await ConversationRepository(session).windows_closed(account_id, environment)
    now = clock.now()
    normalise = whatsapp_normaliser(
        provider.test_numbers, await aliases(session, account_id, environment)
    )
    refuse_opted = opt_out_refusal(opted, "WhatsApp")
    targets = await moved(session, account_id, environment)
    simulated: dict[str, datetime | None] = {}

    def refused(to: str) -> Rejected | None:
        refusal = refuse_opted(to)
        if refusal is not None:
            return refusal
        last = stored.get(to)
        known = simulated.get(to)
        moments = [moment for moment in (last, known) if moment is not None]
        shut = closed.get(to)
        if not moments or max(moments) + WINDOW <= now or closed_since(shut, max(moments)):
            return Rejected(
                "outside_customer_service_window",
                f"{to}'s 24-hour window is closed: send a template instead.",
            )
        return None

    def build(to: str, variables: Mapping[str, str]) -> PlannedMessage:
        content: dict[str, Any] = {"previewUrl": False}
        if to in targets:
            # A contact who changed its number or user id is reached at the new one.
            content["deliverTo"] = targets[to]
        return PlannedMessage(
            to=to,
            body=text.render(variables),
            content=content,
            segments=None,
            encoding=None,
            cost=settings.prices.whatsapp_message,
        )

    async def learn(given: list[str]) -> None:
        # What only the provider knows (the sandbox's simulated contacts).
        for value in given:
            try:
                contact = normalise(value)
            except ApiError:
                continue
            simulated[contact] = await provider.last_inbound_at(contact)

    return ChannelRules(normalise, build, refused, prefetch=learn)
