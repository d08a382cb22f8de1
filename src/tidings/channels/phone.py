"""Phone numbers: validated with phonenumbers and stored as E.164 (``+393331234567``).

A number may be given with or without its ``+``; national formats are refused,
since the API has no default country. ``extra_valid`` lets an environment accept
numbers outside the numbering plan: the sandbox's magic test numbers.
"""

from __future__ import annotations

import re

import phonenumbers

from tidings.core.errors import FieldError, Unprocessable

_ALLOWED = re.compile(r"^\+?[0-9][0-9 ()\-.]{3,30}$")


def invalid_phone(value: str, field: str, reason: str) -> Unprocessable:
    return Unprocessable(
        f"{value!r} is not a valid phone number: {reason}",
        code="invalid_phone_number",
        errors=[FieldError(field, "invalid_phone_number", reason)],
    )


def to_e164(value: str, field: str = "to", *, extra_valid: frozenset[str] = frozenset()) -> str:
    text = value.strip()
    if not _ALLOWED.match(text):
        raise invalid_phone(value, field, "use the international format, e.g. +393331234567.")
    digits = "+" + re.sub(r"[^0-9]", "", text)
    if digits in extra_valid:
        return digits
    try:
        parsed = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        raise invalid_phone(value, field, "it has no valid country code.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise invalid_phone(value, field, "no such number exists in its country's plan.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
