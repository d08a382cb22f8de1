"""The 24-hour customer service window (spec section 5).

A contact's message opens it for 24 hours; each further message restarts it.
Outside it only template notifications may be sent. The contact's last inbound
message comes from the database, or from what the provider alone knows (the
sandbox's simulated contacts), whichever is later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tidings.channels.base import Provider
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.messages.repository import MessageRepository

WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Window:
    last_inbound_at: datetime | None
    expires_at: datetime | None
    open: bool


async def customer_window(
    repo: MessageRepository,
    provider: Provider,
    clock: Clock,
    *,
    account_id: str,
    environment: Environment,
    contact: str,
) -> Window:
    return await window_from(
        await repo.last_inbound_at(account_id, environment, "whatsapp", contact),
        provider,
        clock,
        contact=contact,
    )


async def window_from(
    stored_last_inbound: datetime | None, provider: Provider, clock: Clock, *, contact: str
) -> Window:
    """The window given the contact's last inbound message found in the database
    (for callers that read it for many contacts in one query)."""
    candidates = [
        moment
        for moment in (stored_last_inbound, await provider.last_inbound_at(contact))
        if moment is not None
    ]
    if not candidates:
        return Window(None, None, False)
    last = max(candidates)
    expires = last + WINDOW
    return Window(last, expires, clock.now() < expires)
