"""The rules of an email send: addresses, content, headers, attachments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidings.channels.email.addresses import Mailbox, parse_mailbox, parse_recipients
from tidings.channels.email.attachments import decode_attachments
from tidings.channels.email.mime import EmailContent, validate_custom_headers
from tidings.channels.email.stored import content_to_json
from tidings.channels.email.tracking import tracking_content
from tidings.core.errors import FieldError, Unprocessable
from tidings.core.ids import new_id
from tidings.messages.drafts import Draft
from tidings.settings import Settings
from tidings.tracking.tokens import TrackingSigner


@dataclass(frozen=True, slots=True)
class Headers:
    """Caller headers already checked (:func:`validate_custom_headers`)."""

    pairs: tuple[tuple[str, str], ...]


def email_draft(
    *,
    settings: Settings,
    sender: str | Mailbox,
    to: str | list[str] | Mailbox,
    cc: str | list[str] | None,
    bcc: str | list[str] | None,
    reply_to: str | Mailbox | None,
    subject: str,
    text: str | None,
    html: str | None,
    headers: dict[str, str] | Headers | None,
    tags: list[str],
    attachments: list[dict[str, Any]],
    tracking: dict[str, bool],
    base_url: str | None = None,
    signer: TrackingSigner | None = None,
    bulk: bool = False,
) -> Draft:
    """The validated message. With ``base_url`` (the deployment's public URL as the
    client reached it) and ``signer``, the content also carries the signed tracking
    links the MIME will use (:mod:`tidings.channels.email.tracking`).

    A :class:`Mailbox` (sender, reply-to, the one ``to``) and a :class:`Headers` are
    taken as already validated: a bulk request checks its sender and headers once,
    and each recipient's address once, not again per message (email-validator was
    most of a bulk email's planning)."""
    if not text and not html:
        raise Unprocessable(
            "An email needs text, html, or both.",
            errors=[FieldError("text", "missing", "Give text or html.")],
        )
    recipients = [to] if isinstance(to, Mailbox) else parse_recipients(to, "to")
    if not recipients:
        raise Unprocessable(
            "An email needs at least one recipient in to.",
            errors=[FieldError("to", "missing", "Give at least one address.")],
        )
    content = EmailContent(
        sender=sender if isinstance(sender, Mailbox) else parse_mailbox(sender, "from"),
        to=tuple(recipients),
        cc=tuple(parse_recipients(cc, "cc")) if cc else (),
        bcc=tuple(parse_recipients(bcc, "bcc")) if bcc else (),
        reply_to=(
            parse_mailbox(reply_to, "replyTo")
            if isinstance(reply_to, str) and reply_to
            else reply_to or None
        ),
        subject=subject,
        text=text,
        html=html,
        headers=(
            headers.pairs
            if isinstance(headers, Headers)
            else validate_custom_headers(headers or {})
        ),
        attachments=decode_attachments(
            attachments, max_total_bytes=settings.email_max_attachment_bytes
        ),
    )
    message_id = new_id("msg")
    tracked = tracking_content(
        message_id=message_id,
        html=html,
        tags=tags,
        flags=tracking,
        base_url=base_url,
        signer=signer,
        bulk=bulk,
    )
    stored = content_to_json(content, tags=tags, tracking=tracked)
    if bulk:
        # Bulk mail is marketing mail: it carries List-Unsubscribe (RFC 8058).
        stored["bulk"] = True
    return Draft(
        id=message_id,
        channel="email",
        to=recipients[0].address,
        sender=content.sender.formatted,
        body=text,
        content=stored,
        cost=settings.prices.email_message,
    )
