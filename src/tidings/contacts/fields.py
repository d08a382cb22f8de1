"""A contact's fields checked one by one: phone, email and variables.

Each checker answers the normalised value or a :class:`Rejection` (a stable code
and a sentence) rather than raising, because the CSV import and list additions
report many rejected rows at once; the JSON endpoints turn a rejection into a
422 with :func:`unprocessable`.

Phones are E.164 (:mod:`tidings.channels.phone`), emails are checked as the email
channel checks them (:mod:`tidings.channels.email.addresses`) and stored
lower-cased, which is how the suppression list stores them and what makes one
address one contact whatever its case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tidings.channels.email.addresses import parse_mailbox
from tidings.channels.phone import to_e164
from tidings.core.errors import FieldError, Unprocessable

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_VARIABLES = 50
MAX_VARIABLE_VALUE = 1024
MAX_VARIABLES_SIZE = 16_384
MAX_PHONE_INPUT = 32
MAX_EMAIL_INPUT = 320
# email_validator costs about 70 us an address (7 s for an import of 100,000). The
# common case, a plain ASCII dot-atom at a plain ASCII domain, is checked by this
# pattern instead; anything else (quoted or non-ASCII parts, IDNA labels, odd
# hyphens) goes to email_validator. tests/contacts/test_fields.py holds the pattern
# to email_validator's answers.
SIMPLE_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*"
    r"@(?:(?!xn--)[A-Za-z0-9](?:[A-Za-z0-9]|-(?!-)){0,61}(?<!-)\.)+[A-Za-z]{2,24}"
)


@dataclass(frozen=True, slots=True)
class Rejection:
    field: str
    code: str
    reason: str

    def field_error(self) -> FieldError:
        return FieldError(self.field, self.code, self.reason)


def unprocessable(rejection: Rejection) -> Unprocessable:
    return Unprocessable(rejection.reason, code=rejection.code, errors=[rejection.field_error()])


def check_phone(value: str, extra_valid: frozenset[str], field: str = "phone") -> str | Rejection:
    if len(value) > MAX_PHONE_INPUT:
        return Rejection(field, "invalid_phone_number", f"{field} is longer than 32 characters.")
    try:
        return to_e164(value, field, extra_valid=extra_valid)
    except Unprocessable as error:
        reason = error.errors[0].message if error.errors else error.detail
        return Rejection(field, "invalid_phone_number", f"{value!r} is not a valid phone: {reason}")


def check_email(value: str, field: str = "email") -> str | Rejection:
    if len(value) > MAX_EMAIL_INPUT or "<" in value:
        return Rejection(field, "invalid_email", f"{value!r} is not a bare email address.")
    if len(value) <= 254 and SIMPLE_EMAIL.fullmatch(value):
        return value.lower()
    try:
        return parse_mailbox(value, field).address.lower()
    except Unprocessable as error:
        return Rejection(field, "invalid_email", error.detail)


def check_variable_name(name: str, field: str = "variables") -> Rejection | None:
    if VARIABLE_NAME.fullmatch(name) is None:
        return Rejection(
            field,
            "invalid_variable_name",
            f"Variable name {name!r} must be a letter or underscore followed by up to 63 "
            "letters, digits or underscores.",
        )
    return None


def check_variables(
    variables: dict[str, str], field: str = "variables"
) -> dict[str, str] | Rejection:
    """The variables as a contact stores them: the names valid, the values strings
    of bounded length, a bounded count and total size."""
    size = 0
    for name, value in variables.items():
        bad_name = check_variable_name(name, field)
        if bad_name is not None:
            return bad_name
        if not isinstance(value, str):
            return Rejection(field, "invalid_variable", f"Variable {name!r} must be a string.")
        if len(value) > MAX_VARIABLE_VALUE:
            return Rejection(
                field,
                "invalid_variable",
                f"Variable {name!r} is longer than {MAX_VARIABLE_VALUE} characters.",
            )
        size += len(name) + len(value)
    if len(variables) > MAX_VARIABLES:
        return Rejection(
            field, "too_many_variables", f"A contact has at most {MAX_VARIABLES} variables."
        )
    if size > MAX_VARIABLES_SIZE:
        return Rejection(
            field,
            "variables_too_large",
            f"A contact's variables total at most {MAX_VARIABLES_SIZE} characters.",
        )
    return variables


def search_text(phone: str | None, email: str | None, variables: dict[str, str]) -> str:
    """What ``?search=`` matches: phone, email and variable values, lower-cased,
    one per line (so that a term never matches across two values)."""
    parts = [part for part in (phone, email) if part]
    parts.extend(variables.values())
    return "\n".join(parts).lower()
