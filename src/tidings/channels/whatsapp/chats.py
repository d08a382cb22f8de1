"""Chat ids: a conversation is its contact's address, written ``chat_<address>``.

The address is the contact's phone number (``chat_393331234567``) or, for a
contact WhatsApp knows only by its business-scoped user id, that user id
(``chat_US.13491208655302741918``); which one a contact has is decided where the
contacts are kept (:mod:`tidings.contacts.whatsapp`). The endpoints take a number
(E.164, ``+`` optional), a user id, or a chat id, so a client that keeps chat ids,
numbers or Meta's user ids all work.
"""

from __future__ import annotations

import re

from tidings.channels.phone import invalid_phone, to_e164

PREFIX = "chat_"
# A chat id, a number or a user id (``CC.`` and up to 128 letters and digits).
MAX_CHAT_ID = 160
# Meta's business-scoped user id: a two-letter country code, a dot, then up to 128
# letters and digits (a parent id reads ``US.ENT.…``).
USER_ID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]{1,140}$")


def is_user_id(value: str) -> bool:
    return USER_ID.match(value) is not None


def chat_id(address: str) -> str:
    return PREFIX + address.lstrip("+")


def contact_of(identifier: str, *, extra_valid: frozenset[str], field: str = "id") -> str:
    """The contact's E.164 number or user id for a chat id, a number or a user id."""
    if identifier.startswith(PREFIX):
        rest = identifier[len(PREFIX) :]
        if is_user_id(rest):
            return rest
        if not rest.isdigit():
            raise invalid_phone(
                identifier, field, "a chat id is chat_ followed by digits or a WhatsApp user id."
            )
        return to_e164("+" + rest, field, extra_valid=extra_valid)
    if is_user_id(identifier):
        return identifier
    return to_e164(identifier, field, extra_valid=extra_valid)
