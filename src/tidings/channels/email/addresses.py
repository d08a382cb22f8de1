"""Email addresses: parsing ``Name <addr>`` mailboxes and recipient lists from API input.

Syntax is checked with ``email_validator`` (no DNS: deliverability is the relay's
business, and a DNS lookup per recipient would make the send endpoint slow and flaky).
Two deliberate departures from its defaults:

* Special-use domains that the library refuses (``.test``, ``.local``, ``.localhost``,
  ``.invalid``, ``.onion``, ``.arpa``) are accepted. The sandbox's magic addresses live under
  ``sandbox.test``, and self-hosted deployments routinely send to internal domains that
  only their own relay can reach; whether a domain is reachable is for that relay to say.
  Every other syntax rule still applies (a domain needs a dot, labels must be valid, ...).
* Local parts must be ASCII. We write 7-bit MIME and do not negotiate SMTPUTF8, so a
  mailbox like ``jörg@example.com`` could not be delivered. IDN *domains* are fine: they
  are stored in their IDNA (``xn--``) form, which is what goes into headers and the SMTP
  envelope.

Errors are :class:`~tidings.core.errors.Unprocessable` with one
:class:`~tidings.core.errors.FieldError` per bad entry, so a client sees all of them at once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.header import Header, decode_header, make_header
from typing import NoReturn

import email_validator
from email_validator import EmailNotValidError, validate_email

from tidings.core.errors import FieldError, Unprocessable

__all__ = ["MAX_DISPLAY_NAME", "MAX_RECIPIENTS", "Mailbox", "parse_mailbox", "parse_recipients"]

MAX_RECIPIENTS = 50
# Keeps a quoted name plus address well inside one 998-octet line.
MAX_DISPLAY_NAME = 200

_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOM_PHRASE = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A validated mailbox. ``address`` is normalised and ASCII (IDN domains in ``xn--`` form)."""

    display_name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def formatted(self) -> str:
        """RFC 5322 ``"Doe, Jane" <jane@example.com>``; non-ASCII names RFC 2047-encoded."""
        return " ".join(self.header_words())

    def header_words(self) -> list[str]:
        """``formatted`` as words that a header may be folded between.

        We do this ourselves because the stdlib's address folding loses or adds spaces in
        long or whitespace-rich non-ASCII names. Names are written as atoms when that is
        exact, else as a quoted string, else (non-ASCII, or containing ``=?``, which
        readers decode even inside quotes) as encoded words of at most 75 characters;
        RFC 2047 ignores the whitespace between adjacent encoded words.
        """
        name = self.display_name
        if not name:
            return [self.address]
        if not name.isascii() or "=?" in name:
            words = Header(name, "utf-8").encode(linesep="\n").split()
        elif _ATOM_PHRASE.fullmatch(name):
            words = [name]
        else:
            words = ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
        return [*words, f"<{self.address}>"]


def parse_mailbox(value: str, field: str) -> Mailbox:
    """Parse ``"News <news@example.com>"``, ``<news@example.com>`` or ``news@example.com``."""
    mailbox, error = _parse(value, field)
    if error is not None:
        raise Unprocessable(error.message, code="invalid_email", errors=[error])
    assert mailbox is not None
    return mailbox


def stored_mailbox(value: str) -> Mailbox:
    """A mailbox as Tidings stored it: the :attr:`Mailbox.formatted` of one parsed and
    validated on the way in (:func:`tidings.channels.email.stored.content_to_json`).

    Not validated again (it was, and its address normalised, before it was stored: the
    send path read each stored address through the validator, about 30 µs each), and
    its display name decoded: ``formatted`` writes a non-ASCII name, or one holding
    ``=?``, as RFC 2047 encoded words, and reading those back as the name made every
    later rendering encode them a second time (an email to ``Zoë <zoe@example.com>``
    showed ``=?utf-8?b?...?=`` as the name).
    """
    name, address = _split(value)
    if "=?" in name:
        name = str(make_header(decode_header(name)))
    return Mailbox(display_name=name, address=address)


def parse_recipients(
    value: str | list[str], field: str, *, max_count: int = MAX_RECIPIENTS
) -> list[Mailbox]:
    """Parse one address or a list of them; duplicates (case-insensitive) keep the first.

    ``max_count`` limits the entries as sent, duplicates included, so that the amount of
    work per request is bounded before any parsing happens.
    """
    if isinstance(value, str):
        entries: list[tuple[str, object]] = [(field, value)]
    elif isinstance(value, list):
        entries = [(f"{field}[{i}]", item) for i, item in enumerate(value)]
    else:
        _fail(field, "invalid_type", "Give an email address or a list of email addresses.")
    if not entries:
        _fail(field, "required", "Give at least one email address.")
    if len(entries) > max_count:
        _fail(field, "too_many_recipients", f"Give at most {max_count} email addresses.")

    mailboxes: list[Mailbox] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    for entry_field, item in entries:
        mailbox, error = _parse(item, entry_field)
        if error is not None:
            errors.append(error)
        elif mailbox is not None and mailbox.address.lower() not in seen:
            seen.add(mailbox.address.lower())
            mailboxes.append(mailbox)
    if errors:
        detail = errors[0].message if len(errors) == 1 else f"{len(errors)} invalid addresses."
        raise Unprocessable(detail, code="invalid_email", errors=errors)
    return mailboxes


def _fail(field: str, code: str, message: str) -> NoReturn:
    # Shape errors (wrong type, empty, too many) are not about one address's syntax.
    raise Unprocessable(message, errors=[FieldError(field, code, message)])


def _parse(value: object, field: str) -> tuple[Mailbox | None, FieldError | None]:
    if not isinstance(value, str):
        return None, FieldError(field, "invalid_email", "An email address must be a string.")
    name, addr = _split(value)
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        # CR/LF here would let a caller inject headers; other controls have no place either.
        message = "The display name must not contain line breaks or control characters."
        return None, FieldError(field, "invalid_email", message)
    if len(name) > MAX_DISPLAY_NAME:
        message = f"The display name may be at most {MAX_DISPLAY_NAME} characters."
        return None, FieldError(field, "invalid_email", message)
    try:
        address = _validate_address(addr)
    except EmailNotValidError as exc:
        return None, FieldError(field, "invalid_email", f"Not a valid email address: {exc}")
    return Mailbox(display_name=name, address=address), None


def _split(value: str) -> tuple[str, str]:
    """Split ``Name <addr>`` into its parts; anything without angle brackets is a bare address."""
    value = value.strip()
    if value.endswith(">") and "<" in value:
        # The last "<" starts the address, so a quoted name may itself contain "<".
        name, _, addr = value[:-1].rpartition("<")
        return _unquote(name.strip()), addr.strip()
    return "", value


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", name[1:-1])
    return name


def _validate_address(addr: str) -> str:
    """Return the normalised ASCII address, accepting special-use domains (see module doc)."""
    local, at, domain = addr.rpartition("@")
    suffix = _special_use_suffix(domain) if at else None
    if suffix is not None:
        # email_validator has no switch for "any special-use name", and changing its
        # module-level list would change it for every other user in the process. So we
        # validate with the special-use label swapped for a neutral one of the same
        # length (length limits still count) and put the real label back afterwards.
        addr = f"{local}@{domain[: -len(suffix)]}{'x' * len(suffix)}"
    result = validate_email(addr, check_deliverability=False, allow_smtputf8=False)
    ascii_email = result.ascii_email
    assert ascii_email is not None  # always set when SMTPUTF8 is not allowed
    if suffix is not None:
        ascii_email = ascii_email[: -len(suffix)] + suffix
    return ascii_email


def _special_use_suffix(domain: str) -> str | None:
    lowered = domain.lower()
    for name in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if lowered == name or lowered.endswith("." + name):
            return name
    return None
