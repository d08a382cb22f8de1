"""Per channel: how a bulk recipient is normalised, refused and rendered.

The rules are the single sends' own (phone numbers, GSM-7 segments, sender ids,
email addresses and MIME, WhatsApp templates); only the lookups a single send
does per request (opt-outs, suppressions) are done once for the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.planning import Normalise, PlannedMessage, Rejected
from tidings.bulk.rendering import Template
from tidings.bulk.shared import Shared, new_shared, split
from tidings.channels.email.addresses import Mailbox, parse_mailbox
from tidings.channels.email.attachments import decode_attachments
from tidings.channels.email.mime import validate_custom_headers
from tidings.channels.email.stored import attachments_to_json
from tidings.channels.phone import to_e164
from tidings.channels.sms.encoding import count_segments
from tidings.contacts.optouts import OptOutRepository
from tidings.contacts.suppressions import SuppressionRepository, normalize
from tidings.core.environments import Environment
from tidings.messages.rules.email import Headers, email_draft
from tidings.settings import Settings
from tidings.tracking.tokens import TrackingSigner

# The content of a planned message that carries it encoded (content_json).
NO_CONTENT: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class ChannelRules:
    normalise: Normalise
    build: Callable[[str, Mapping[str, str]], PlannedMessage]
    refused: Callable[[str], Rejected | None]
    # Runs before planning, with every recipient as given: for what only an
    # asynchronous call can tell (planning itself runs in a thread).
    prefetch: Callable[[list[str]], Awaitable[None]] | None = None
    # Content every message carries alike, stored once for the batch; the
    # messages' content names it (tidings.bulk.shared).
    shared: Shared | None = None


async def opted_out(
    session: AsyncSession, account_id: str, environment: Environment, channel: str
) -> frozenset[str]:
    return await OptOutRepository(session).addresses(account_id, environment, channel)


async def suppressed(
    session: AsyncSession, account_id: str, environment: Environment
) -> frozenset[str]:
    return await SuppressionRepository(session).all_addresses(account_id, environment)


def phone_normaliser(extra_valid: frozenset[str]) -> Normalise:
    def normalise(to: str) -> str:
        return to_e164(to, "to", extra_valid=extra_valid)

    return normalise


def opt_out_refusal(opted: frozenset[str], channel: str) -> Callable[[str], Rejected | None]:
    def refused(to: str) -> Rejected | None:
        if to in opted:
            return Rejected(
                "recipient_opted_out", f"{to} has opted out of {channel} messages (sent STOP)."
            )
        return None

    return refused


def sms_rules(
    *,
    settings: Settings,
    body: str,
    validity_period: int | None,
    extra_valid: frozenset[str],
    opted: frozenset[str],
) -> ChannelRules:
    template = Template.compile(body)
    content: dict[str, Any] = {}
    if validity_period is not None:
        content["validityPeriod"] = validity_period
    price = settings.prices.sms_segment
    maximum = settings.sms_max_segments
    static = count_segments(body) if template.is_static else None
    costs = {n: price * Decimal(n) for n in range(1, maximum + 1)}

    def build(to: str, variables: Mapping[str, str]) -> PlannedMessage:
        text = template.render(variables)
        segments, encoding = static or count_segments(text)
        if segments > maximum:
            raise Rejected(
                "message_too_long",
                f"The message needs {segments} {encoding} segments; the maximum is {maximum}.",
            )
        return PlannedMessage(
            to=to,
            body=text,
            content=content,
            segments=segments,
            encoding=encoding,
            cost=costs[segments],
        )

    return ChannelRules(phone_normaliser(extra_valid), build, opt_out_refusal(opted, "SMS"))


@dataclass(frozen=True, slots=True)
class EmailContentSpec:
    sender: str
    subject: str
    text: str | None
    html: str | None
    reply_to: str | None
    headers: dict[str, str] | None
    tags: list[str]
    attachments: list[dict[str, Any]]
    tracking: dict[str, bool]


def email_rules(
    *,
    settings: Settings,
    spec: EmailContentSpec,
    base_url: str,
    signer: TrackingSigner,
    suppressed_addresses: frozenset[str],
) -> ChannelRules:
    subject = Template.compile(spec.subject)
    text = Template.compile(spec.text) if spec.text is not None else None
    html = Template.compile(spec.html, html_escape=True) if spec.html is not None else None
    shared = _shared_content(settings, spec, text, html)
    # Checked once for the batch, not once per recipient (email_draft takes them as
    # validated): email-validator was most of a bulk email's planning.
    sender = parse_mailbox(spec.sender, "from")
    reply_to = parse_mailbox(spec.reply_to, "replyTo") if spec.reply_to else None
    headers = Headers(validate_custom_headers(spec.headers or {}))

    def normalise(to: str) -> str:
        return parse_mailbox(to, "to").address.lower()

    def refused(address: str) -> Rejected | None:
        if normalize(address) in suppressed_addresses:
            return Rejected(
                "recipient_suppressed",
                f"{address} is on the suppression list (a hard bounce, complaint or unsubscribe).",
            )
        return None

    def build(to: str, variables: Mapping[str, str]) -> PlannedMessage:
        draft = email_draft(
            settings=settings,
            sender=sender,
            # ``to`` is what normalise made of the recipient: validated, lower-cased.
            to=Mailbox("", to),
            cc=None,
            bcc=None,
            reply_to=reply_to,
            subject=subject.render(variables),
            text=text.render(variables) if text is not None else None,
            html=html.render(variables) if html is not None else None,
            headers=headers,
            tags=spec.tags,
            # Checked and encoded once, into the shared content.
            attachments=[],
            tracking=spec.tracking,
            base_url=base_url,
            signer=signer,
            bulk=True,
        )
        content = draft.content
        if shared is not None:
            content = split(content, shared.content, shared.id)
        return PlannedMessage(
            id=draft.id,
            to=draft.to,
            body=draft.body,
            content=NO_CONTENT,
            segments=None,
            encoding=None,
            cost=draft.cost,
            content_json=json.dumps(content),
        )

    return ChannelRules(normalise, build, refused, shared=shared)


def _shared_content(
    settings: Settings, spec: EmailContentSpec, text: Template | None, html: Template | None
) -> Shared | None:
    """What every recipient's email holds alike and is worth storing once: the
    attachments (decoded and checked once: a bad one refuses the request), and
    the text and HTML when no variable changes them."""
    attachments = decode_attachments(
        spec.attachments, max_total_bytes=settings.email_max_attachment_bytes
    )
    content: dict[str, Any] = {"attachments": attachments_to_json(attachments)}
    if text is not None and text.is_static:
        content["text"] = text.render({})
    if html is not None and html.is_static:
        content["html"] = html.render({})
    if not attachments and "html" not in content and "text" not in content:
        return None
    return new_shared(content)
