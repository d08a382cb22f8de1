"""Reading a report that arrived by mail: a DSN (RFC 3464), a complaint (ARF, RFC
5965), a bounce in an MTA's own words, or an auto-reply, with the stdlib ``email``
package (providers.md 1.2: no DSN/ARF library is worth a dependency).

Bounces that are not RFC 3464 (old Exchange, qmail, some Sendmail) are classified
by their text with this table, first match wins; the status code found in the text
decides the class when there is one:

=====================================================  =====================
text (case-insensitive)                                class
=====================================================  =====================
a ``5.x.x`` status code                                failed, that code
a ``4.x.x`` status code                                delayed, that code
"user unknown", "no such user", "does not exist",      failed, 5.1.1
"unknown user", "mailbox unavailable", "recipient
address rejected", "invalid recipient"
"mailbox full", "quota exceeded", "over quota"         delayed, 4.2.2
=====================================================  =====================

A text bounce is only read as one when it comes from a mailer daemon (``From``
``MAILER-DAEMON``/``postmaster``, or an empty return path) or its subject says so.
Auto-replies (``Auto-Submitted: auto-replied``, ``X-Autoreply``, ``Precedence:
auto_reply``, vacation and out-of-office subjects) are never bounces
(listmonk#1334).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Literal

Kind = Literal["dsn", "arf", "text-bounce", "autoreply", "unknown"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    address: str
    action: str
    status: str
    diagnostic: str | None = None


@dataclass(frozen=True, slots=True)
class MailReport:
    kind: Kind
    recipients: tuple[RecipientStatus, ...] = ()
    feedback_type: str | None = None
    # Headers of the original message it quotes (for matching complaints).
    original: dict[str, str] = field(default_factory=dict)
    envelope_id: str | None = None


# A status code, not part of an IP address or a version number ("10.5.1.1").
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such user|does not exist|mailbox unavailable"
    r"|recipient address rejected|invalid recipient",
    re.IGNORECASE,
)
_FULL_WORDS = re.compile(r"mailbox (is )?full|quota exceeded|over quota", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|mail delivery failed"
    r"|returned mail|failure notice|delivery failure",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?reply|vacation|abwesenheit",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster", re.IGNORECASE)
ORIGINAL_HEADERS = ("message-id", "return-path", "x-tidings-message-id", "to", "from")


def read_mail(raw: bytes) -> MailReport:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    content_type = message.get_content_type()
    param = message.get_param("report-type")
    report_type = param.lower() if isinstance(param, str) else ""
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _dsn(message)
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _arf(message)
    # Mailer daemons mark their bounces auto-replied too (RFC 3834): they are read
    # as bounces first; anything else auto-submitted is a reply, never a bounce.
    bounce = _text_bounce(message)
    if bounce.kind != "unknown":
        return bounce
    return MailReport("autoreply") if _is_autoreply(message) else bounce


def _parts(message: Message, content_type: str) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() == content_type]


def _blocks(part: Message) -> list[Message]:
    """The header blocks (or the enclosed message) of a ``message/*`` part."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [block for block in payload if isinstance(block, Message)]


def _dsn(message: Message) -> MailReport:
    recipients: list[RecipientStatus] = []
    envelope_id = None
    for part in _parts(message, "message/delivery-status"):
        blocks = _blocks(part)
        if not blocks:
            continue
        envelope_id = _plain(blocks[0].get("Original-Envelope-Id"))
        for block in blocks[1:]:
            address = _address(block.get("Original-Recipient")) or _address(
                block.get("Final-Recipient")
            )
            final = _address(block.get("Final-Recipient")) or address
            action = (_plain(block.get("Action")) or "").lower()
            status = _plain(block.get("Status")) or ""
            if final is None or not action:
                continue
            recipients.append(
                RecipientStatus(final, action, status, _plain(block.get("Diagnostic-Code")))
            )
            if address is not None and address != final:
                recipients.append(
                    RecipientStatus(address, action, status, _plain(block.get("Diagnostic-Code")))
                )
    return MailReport(
        "dsn", tuple(recipients), original=_original(message), envelope_id=envelope_id
    )


def _arf(message: Message) -> MailReport:
    feedback_type = None
    recipients: list[RecipientStatus] = []
    for part in _parts(message, "message/feedback-report"):
        fields = _feedback_fields(part)
        feedback_type = (fields.get("feedback-type") or "abuse").lower()
        rcpt = _address(fields.get("original-rcpt-to"))
        if rcpt is not None:
            recipients.append(RecipientStatus(rcpt, "complained", ""))
    return MailReport(
        "arf",
        tuple(recipients),
        feedback_type=feedback_type or "abuse",
        original=_original(message),
    )


def _feedback_fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        fields: dict[str, str] = {}
        for block in _blocks(part):
            for name, value in block.items():
                fields.setdefault(name.lower(), str(value))
        return fields
    parsed = email.message_from_string(str(payload), policy=email.policy.compat32)
    return {name.lower(): str(value) for name, value in parsed.items()}


def _original(message: Message) -> dict[str, str]:
    """The headers of the quoted original (``message/rfc822`` or ``text/rfc822-headers``)."""
    for part in message.walk():
        kind = part.get_content_type()
        original: Message | None = None
        if kind == "message/rfc822":
            inner = _blocks(part)
            original = inner[0] if inner else None
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                original = email.message_from_bytes(text, policy=email.policy.compat32)
        if original is not None:
            return {
                name: str(original[name]).strip()
                for name in ORIGINAL_HEADERS
                if original[name] is not None
            }
    return {}


def _is_autoreply(message: Message) -> bool:
    auto = (message.get("Auto-Submitted") or "").strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if (message.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(message.get("Subject") or ""))


def _text_bounce(message: Message) -> MailReport:
    sender = message.get("From") or ""
    subject = message.get("Subject") or ""
    return_path = (message.get("Return-Path") or "").strip()
    from_daemon = bool(_DAEMON.search(sender)) or return_path == "<>"
    if not from_daemon and not _BOUNCE_SUBJECT.search(subject):
        return MailReport("unknown")
    text = _text_of(message)
    found = _STATUS.search(text)
    if found is not None:
        status = ".".join(found.groups())
        action = "failed" if status.startswith("5") else "delayed"
    elif _HARD_WORDS.search(text):
        status, action = "5.1.1", "failed"
    elif _FULL_WORDS.search(text):
        status, action = "4.2.2", "delayed"
    else:
        return MailReport("unknown")
    line = _line_of(text, found)
    # The text names the failed address somewhere; each address found is a candidate
    # (the caller keeps the one it sent to).
    recipients = tuple(
        RecipientStatus(address, action, status, line) for address in _addresses(text)
    )
    return MailReport("text-bounce", recipients, original=_original(message))


def _text_of(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("utf-8", "replace"))
    return "\n".join(chunks)


_EMAIL = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")


def _addresses(text: str) -> list[str]:
    return list(dict.fromkeys(match.group(1).lower() for match in _EMAIL.finditer(text)))


def _line_of(text: str, found: re.Match[str] | None) -> str | None:
    if found is None:
        return None
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.end())
    return text[start : end if end != -1 else None].strip()[:500]


def _plain(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _address(value: object) -> str | None:
    """``rfc822; user@example.org`` -> ``user@example.org``."""
    text = _plain(value)
    if text is None:
        return None
    _, _, address = text.rpartition(";")
    address = address.strip().strip("<>").lower()
    return address or None
