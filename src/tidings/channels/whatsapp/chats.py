"""Chat ids: a conversation is its contact's address, written ``chat_<address>``.

The address is the contact's phone number (``chat_393331234567``) or, for a
contact WhatsApp knows only by its business-scoped user id, that user id
(``chat_US.13491208655302741918``); see :mod:`tidings.channels.whatsapp.contacts`.
The endpoints take a number (E.164, ``+`` optional), a user id, or a chat id, so
a client that keeps chat ids, numbers or Meta's user ids all work.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.phone import invalid_phone, to_e164
from tidings.channels.whatsapp.contacts import is_user_id, resolve
from tidings.core.environments import Environment

PREFIX = "chat_"
# A chat id, a number or a user id (``CC.`` and up to 128 letters and digits).
MAX_CHAT_ID = 160


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


async def address_of(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    identifier: str,
    *,
    extra_valid: frozenset[str],
    field: str = "id",
) -> str:
    """The conversation address for what a caller gave: a contact first seen by its
    user id keeps it as its address, even when addressed by the phone it showed
    later, and a user id whose phone is the address finds that phone."""
    given = contact_of(identifier, extra_valid=extra_valid, field=field)
    return await resolve(session, account_id, environment, given)
