"""An email send as kept on the message row, and back to MIME for a provider.

The row keeps the validated request (formatted addresses, subject, bodies,
headers, base64 attachments) rather than the MIME, so a provider builds its
MIME when it submits (each with its own headers and signature).

A bulk email's message keeps only what differs per recipient and names the
batch's shared content (attachments, and the bodies when they are the same for
all) under ``"shared"`` (:mod:`tidings.bulk.shared`); the dispatcher puts it
back before the provider sees the message, and a reference still in place is
refused here: sent as it is, the email would lack its attachments.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tidings.channels.email.addresses import Mailbox, stored_mailbox
from tidings.channels.email.attachments import Attachment
from tidings.channels.email.html_text import html_to_text
from tidings.channels.email.mime import EmailContent, build_message, render_bytes
from tidings.channels.email.tracking import apply_tracking
from tidings.providers.base import OutboundMessage


def content_to_json(
    content: EmailContent, *, tags: list[str], tracking: dict[str, Any]
) -> dict[str, Any]:
    return {
        "from": content.sender.formatted,
        "to": [mailbox.formatted for mailbox in content.to],
        "cc": [mailbox.formatted for mailbox in content.cc],
        "bcc": [mailbox.formatted for mailbox in content.bcc],
        "replyTo": content.reply_to.formatted if content.reply_to else None,
        "subject": content.subject,
        "text": content.text,
        "html": content.html,
        "headers": [list(pair) for pair in content.headers],
        "attachments": attachments_to_json(content.attachments),
        "tags": tags,
        "tracking": tracking,
    }


def attachments_to_json(attachments: Sequence[Attachment]) -> list[dict[str, str]]:
    return [
        {
            "filename": item.filename,
            "contentType": item.content_type,
            "content": base64.b64encode(item.content).decode(),
        }
        for item in attachments
    ]


def _mailboxes(values: list[str]) -> tuple[Mailbox, ...]:
    return tuple(stored_mailbox(value) for value in values)


# The key naming a batch's shared content (tidings.bulk.shared.SHARED_KEY).
SHARED_REFERENCE = "shared"


class UnresolvedSharedContent(ValueError):
    """A message's content still names its batch's shared content."""


def content_from_json(data: dict[str, Any]) -> EmailContent:
    if SHARED_REFERENCE in data:
        raise UnresolvedSharedContent(
            f"the content names shared content {data[SHARED_REFERENCE]!r} that was not put back"
        )
    reply_to = data.get("replyTo")
    return EmailContent(
        sender=stored_mailbox(data["from"]),
        to=_mailboxes(data.get("to", [])),
        cc=_mailboxes(data.get("cc", [])),
        bcc=_mailboxes(data.get("bcc", [])),
        reply_to=stored_mailbox(reply_to) if reply_to else None,
        subject=data.get("subject", ""),
        text=data.get("text"),
        html=data.get("html"),
        headers=tuple((name, value) for name, value in data.get("headers", [])),
        attachments=tuple(
            Attachment(item["filename"], item["contentType"], base64.b64decode(item["content"]))
            for item in data.get("attachments", [])
        ),
    )


def render_outbound_email(message: OutboundMessage, *, date: datetime) -> bytes:
    """The MIME of a message as sent: a pure function of the message (its content
    carries the tracking base URL and the signed tokens, see
    :mod:`tidings.channels.email.tracking`) and the date."""
    content = content_from_json(message.content)
    text = content.text
    if text is None and content.html is not None:
        # The text alternative follows the caller's HTML, not the pixel and footer.
        text = html_to_text(content.html)
    tracked = apply_tracking(message.content, text, content.html)
    content = dataclasses.replace(content, text=tracked.text, html=tracked.html)
    built = build_message(
        content,
        message_id=message.id,
        date=date,
        extra_headers=[*tracked.headers, ("X-Tidings-Message-Id", message.id)],
    )
    return render_bytes(built)
