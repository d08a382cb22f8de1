"""Chat ids: a conversation is its contact's number, written ``chat_<digits>``.

The send endpoint takes a number (E.164, ``+`` optional) or a chat id, so a
client that keeps chat ids and one that keeps numbers both work.
"""

from __future__ import annotations

from tidings.channels.phone import invalid_phone, to_e164

PREFIX = "chat_"


def chat_id(e164: str) -> str:
    return PREFIX + e164.lstrip("+")


def contact_of(identifier: str, *, extra_valid: frozenset[str]) -> str:
    """The contact's E.164 number for a chat id or a number."""
    if identifier.startswith(PREFIX):
        digits = identifier[len(PREFIX) :]
        if not digits.isdigit():
            raise invalid_phone(identifier, "id", "a chat id is chat_ followed by digits.")
        return to_e164("+" + digits, "id", extra_valid=extra_valid)
    return to_e164(identifier, "id", extra_valid=extra_valid)
