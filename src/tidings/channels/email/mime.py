"""Building RFC 5322 / MIME messages from a validated send request.

Also here: the check on caller-supplied headers, which end up inside the message, and the
envelope recipient list. Attachments are decoded in :mod:`.attachments` (re-exported here).

Output is 7-bit clean (``cte_type="7bit"``): non-ASCII bodies go out quoted-printable or
base64 and non-ASCII headers as RFC 2047 encoded words. An 8bit body could be rewritten by
a relay without 8BITMIME, which would break the DKIM signature.

Normalisation, so that callers can store exactly what recipients will read:

* bodies: CRLF and lone CR become LF and a final line break is added (:func:`normalise_body`);
* subjects: line breaks become spaces and outer whitespace is trimmed (:func:`normalise_subject`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.header import Header
from email.headerregistry import (
    Address,
    AddressHeader,
    BaseHeader,
    HeaderRegistry,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from typing import Any

from tidings.channels.email.addresses import Mailbox
from tidings.channels.email.attachments import Attachment, decode_attachments
from tidings.channels.email.html_text import html_to_text
from tidings.core.errors import FieldError, Unprocessable

__all__ = [
    "POLICY",
    "Attachment",
    "EmailContent",
    "build_message",
    "decode_attachments",
    "envelope_recipients",
    "normalise_body",
    "normalise_subject",
    "render_bytes",
    "validate_custom_headers",
]

MAX_LINE_OCTETS = 998  # RFC 5322 section 2.1.1, CRLF excluded

# RFC 5322 field-name: printable ASCII except ":".
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]{1,76}")
_LINE_BREAK = re.compile(r"\r\n|\r")
# Headers we write ourselves (or relays do); a caller setting them could spoof the sender,
# leak Bcc, break DKIM or unsubscribe handling. X-Tidings-* identify our own messages in
# bounce and complaint reports, so forging them would misattribute those reports.
_OWNED_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "reply-to",
        "sender", "dkim-signature", "return-path", "received", "authentication-results",
    }
)  # fmt: skip
_OWNED_PREFIXES = ("content-", "list-unsubscribe", "resent-", "arc-", "x-tidings-")


class _LiteralSubjectHeader(UnstructuredHeader, BaseHeader):
    """A Subject whose text is taken literally, even where it looks like ``=?utf-8?q?...?=``.

    The stock header class decodes encoded words found in an assigned value and later
    writes the decoded text back out raw, so a subject that merely *mentions* RFC 2047
    syntax would reach the recipient changed. Such subjects are sent fully encoded instead.
    """

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value

    def fold(self, *, policy: Policy) -> str:
        if "=?" not in self:
            return super().fold(policy=policy)
        name = self.name
        encoded = Header(str(self), "utf-8", header_name=name).encode(linesep=policy.linesep)
        return f"{name}: {encoded}{policy.linesep}"


class _MailboxListHeader(AddressHeader, BaseHeader):  # type: ignore[misc]  # stub init clash
    """From/To/Cc/Reply-To, folded from :meth:`Mailbox.header_words` (see there for why)."""

    max_count = 1

    def fold(self, *, policy: Policy) -> str:
        words = [f"{self.name}:"]
        for address in self.addresses:
            words += Mailbox(address.display_name, address.addr_spec).header_words()
            words[-1] += ","
        words[-1] = words[-1].removesuffix(",")
        limit = policy.max_line_length or MAX_LINE_OCTETS
        lines = [words[0]]
        for word in words[1:]:
            if len(lines[-1]) + 1 + len(word) > limit:
                lines.append(f" {word}")
            else:
                lines[-1] += f" {word}"
        return policy.linesep.join(lines) + policy.linesep


# A private registry: mapping a class on the shared default registry would change every
# other user of email.policy in the process. This policy is for *building* messages only.
_registry = HeaderRegistry()
_registry.map_to_type("subject", _LiteralSubjectHeader)
for _name in ("from", "to", "cc", "reply-to"):
    _registry.map_to_type(_name, _MailboxListHeader)
POLICY = email_policy.SMTP.clone(cte_type="7bit", header_factory=_registry)


@dataclass(frozen=True, slots=True)
class EmailContent:
    """Everything that goes into one message, already validated."""

    sender: Mailbox
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...]
    bcc: tuple[Mailbox, ...]
    reply_to: Mailbox | None
    subject: str
    text: str | None
    html: str | None
    headers: tuple[tuple[str, str], ...]
    attachments: tuple[Attachment, ...]


def validate_custom_headers(headers: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """Check caller-supplied headers; refuse injection attempts and headers we own.

    Values are header text as on the wire: non-ASCII is encoded for the caller, and an
    RFC 2047 encoded word the caller wrote is left for mail clients to decode.
    """
    if not isinstance(headers, Mapping):
        message = "Give the headers as an object of names to values."
        raise Unprocessable(message, errors=[FieldError("headers", "invalid_type", message)])
    result: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    for name, value in headers.items():
        error = _header_error(name, value, seen)
        if error is not None:
            errors.append(FieldError(f"headers.{name}", "invalid_header", error))
            continue
        assert isinstance(value, str)
        seen.add(name.lower())
        result.append((name, value))
    if errors:
        raise Unprocessable(errors[0].message, errors=errors)
    return tuple(result)


def _header_error(name: str, value: object, seen: set[str]) -> str | None:
    if not _FIELD_NAME.fullmatch(name):
        return "A header name is 1 to 76 printable ASCII characters without ':' or spaces."
    lowered = name.lower()
    if lowered in _OWNED_HEADERS or lowered.startswith(_OWNED_PREFIXES):
        return f"{name} is set by Tidings and cannot be given here."
    if lowered in seen:
        return f"{name} is given more than once."
    if not isinstance(value, str):
        return "A header value must be a string."
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch != "\t" for ch in value):
        # CR/LF would start a new header (header injection); the rest is just invalid.
        return "A header value must not contain line breaks or control characters."
    try:
        header = POLICY.header_factory(name, value)
        folded = header.fold(policy=POLICY)
    except (ValueError, TypeError, IndexError):
        folded, header = "", None
    if header is None or header.defects:
        # Structured headers (Orig-Date, ...) would otherwise be sent empty or mangled.
        return f"The value is not a valid {name} header."
    if any(len(line) > MAX_LINE_OCTETS for line in folded.encode().split(b"\r\n")):
        return "The header value is too long to fold into lines of 998 octets."
    return None


def normalise_subject(subject: str) -> str:
    return " ".join(subject.splitlines()).strip()


def normalise_body(text: str) -> str:
    text = _LINE_BREAK.sub("\n", text)
    return text if text.endswith("\n") else text + "\n"


def build_message(
    content: EmailContent,
    *,
    message_id: str,
    date: datetime,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """Build the message. Bcc is deliberately absent: see :func:`envelope_recipients`.

    ``message_id`` is our id (``msg_...``); it becomes ``<message_id@sender-domain>``.
    ``extra_headers`` are our own (List-Unsubscribe, X-Tidings-*), so they skip the checks
    that :func:`validate_custom_headers` applies to callers' headers.
    """
    if date.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    if not re.fullmatch(r"[A-Za-z0-9._+-]{1,200}", message_id):
        raise ValueError(f"unusable message id {message_id!r}")
    msg = EmailMessage(policy=POLICY)
    _set_mailboxes(msg, "From", (content.sender,))
    if content.to:
        _set_mailboxes(msg, "To", content.to)
    if content.cc:
        _set_mailboxes(msg, "Cc", content.cc)
    if content.reply_to is not None:
        _set_mailboxes(msg, "Reply-To", (content.reply_to,))
    _set(msg, "Subject", normalise_subject(content.subject))
    _set(msg, "Date", format_datetime(date))
    _set(msg, "Message-ID", f"<{message_id}@{content.sender.domain}>")
    for name, value in extra_headers:
        _set(msg, name, value)
    for name, value in content.headers:
        msg[name] = value

    text = content.text
    if text is None:
        text = html_to_text(content.html) if content.html is not None else ""
    if content.html is not None or content.attachments or not _set_plain_text(msg, text):
        _set_text(msg, text)
    if content.html is not None:
        msg.add_alternative(content.html, subtype="html", cte=_forced_cte(content.html))
    for item in content.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        # add_attachment turns the message into multipart/mixed around the body.
        msg.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.filename)
    for part in msg.walk():
        # The stdlib stamps MIME-Version on every part it creates; RFC 2045 needs it only at
        # the top, and strict filters count repeats as noise.
        if part is not msg:
            del part["MIME-Version"]
    return msg


def _address(mailbox: Mailbox) -> Address:
    return Address(display_name=mailbox.display_name, addr_spec=mailbox.address)


# What a header line may hold to be written as given: printable ASCII and spaces, no
# encoded-word look-alike, no runs of spaces or outer spaces (which folding would change).
_PLAIN_VALUE = re.compile(r"(?:[\x21-\x7e]+ )*[\x21-\x7e]+")


def _set(msg: EmailMessage, name: str, value: str) -> None:
    """One of our own headers. A short plain-ASCII value (nearly always: dates, ids,
    ASCII subjects and addresses) is exactly what the header classes would write, so
    it is stored as the line it becomes (``set_raw``): parsing it into a header object
    and folding it back cost most of a message's rendering. Anything else goes
    through the header classes."""
    line_length = len(name) + 2 + len(value)
    if (
        line_length <= (POLICY.max_line_length or MAX_LINE_OCTETS)
        and "=?" not in value
        and _PLAIN_VALUE.fullmatch(value)
    ):
        msg.set_raw(name, value)
    else:
        msg[name] = value


def _set_mailboxes(msg: EmailMessage, name: str, mailboxes: Sequence[Mailbox]) -> None:
    """An address header: as given when it fits on one plain line (the words of
    :meth:`Mailbox.header_words` joined as :class:`_MailboxListHeader` joins them),
    else through that class."""
    value = ", ".join(mailbox.formatted for mailbox in mailboxes)
    if len(name) + 2 + len(value) <= (POLICY.max_line_length or MAX_LINE_OCTETS) and (
        _PLAIN_VALUE.fullmatch(value) and "=?" not in value
    ):
        msg.set_raw(name, value)
    else:
        addresses = [_address(m) for m in mailboxes]
        msg[name] = addresses if len(addresses) > 1 or name in ("To", "Cc") else addresses[0]


def _set_plain_text(msg: EmailMessage, text: str) -> bool:
    """The whole body of a text-only message whose text is short-lined plain ASCII
    (nearly all transactional mail): the headers and payload ``set_content`` would
    give it (``Content-Type: text/plain; charset="utf-8"``, 7bit, ``MIME-Version``;
    the payload its lines joined with LF), stored directly, as :func:`_set` does for
    headers. ``set_content`` parses the Content-Type it writes twice (0.19 ms of a
    message's 0.33 ms of rendering). False, nothing set, for any other text (a test
    holds the bytes equal to ``set_content``'s)."""
    if not text.isascii() or _BODY_CONTROL.search(text):
        return False
    lines = text.encode("ascii").splitlines()
    if max((len(line) for line in lines), default=0) > (POLICY.max_line_length or 78):
        return False
    if any(name.lower().startswith("content-") for name in msg):
        return False
    msg.set_raw("Content-Type", 'text/plain; charset="utf-8"')
    msg.set_payload((b"\n".join(lines) + b"\n").decode("ascii"))
    msg.set_raw("Content-Transfer-Encoding", "7bit")
    if "MIME-Version" not in msg:
        msg.set_raw("MIME-Version", "1.0")
    return True


def _set_text(msg: EmailMessage, text: str) -> None:
    msg.set_content(text, subtype="plain", cte=_forced_cte(text))


# C0 controls but tab, LF and CR, and DEL.
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _forced_cte(text: str) -> str | None:
    # The stdlib picks 7bit for short ASCII lines even when they hold NUL or other
    # controls, which RFC 5322 forbids in a body; quoted-printable escapes them.
    # (A regular expression: a generator over each character took 24 us for 512.)
    if _BODY_CONTROL.search(text):
        return "quoted-printable"
    return None


def envelope_recipients(content: EmailContent) -> list[str]:
    """To, Cc and Bcc addresses for RCPT TO, each once (case-insensitive, first kept)."""
    seen: set[str] = set()
    result: list[str] = []
    for mailbox in (*content.to, *content.cc, *content.bcc):
        if mailbox.address.lower() not in seen:
            seen.add(mailbox.address.lower())
            result.append(mailbox.address)
    return result


def render_bytes(msg: EmailMessage) -> bytes:
    plain = _plain_bytes(msg)
    return plain if plain is not None else msg.as_bytes(policy=POLICY)


# A line the generator writes as it is: printable ASCII and spaces, no line break.
_PLAIN_LINE = re.compile(r"[\x20-\x7e]*")


def _plain_bytes(msg: EmailMessage) -> bytes | None:
    """What the generator writes for a single-part message whose headers are all
    stored lines (:func:`_set`, :func:`_set_plain_text`) short enough not to fold and
    whose payload is 7bit ASCII text: each header line as stored, CRLF line ends.
    The generator re-parses each stored header to decide whether to fold it (0.1 ms
    of a text-only message's 0.28 ms). None for anything else (a test holds the
    bytes equal to the generator's)."""
    if msg.is_multipart():
        return None
    payload = msg.get_payload()
    if not isinstance(payload, str) or not payload.isascii() or not payload.endswith("\n"):
        return None
    limit = POLICY.max_line_length or MAX_LINE_OCTETS
    lines: list[str] = []
    for name, value in msg.raw_items():
        if (
            not isinstance(value, str)
            or hasattr(value, "name")  # a header object, folded by its class
            or len(name) + 2 + len(value) > limit
            or not _PLAIN_LINE.fullmatch(value)
        ):
            return None
        lines.append(f"{name}: {value}\r\n")
    if "\r" in payload:
        return None
    lines.append("\r\n")
    lines.append(payload.replace("\n", "\r\n"))
    return "".join(lines).encode("ascii")
