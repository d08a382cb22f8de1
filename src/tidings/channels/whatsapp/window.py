"""The 24-hour customer service window (spec section 5).

A contact's message opens it for 24 hours; each further message restarts it.
Outside it only template notifications may be sent. The contact's last inbound
message comes from the database (the caller reads it), or from what the provider
alone knows (the sandbox's simulated contacts), whichever is later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tidings.core.clock import Clock

WINDOW = timedelta(hours=24)


class InboundKnowledge(Protocol):
    """What the channel's providers alone know of a contact writing in (the
    simulator pretends its contacts did; real networks tell us through inbound
    messages, which are in the database)."""

    async def last_inbound_at(self, contact: str) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Window:
    last_inbound_at: datetime | None
    expires_at: datetime | None
    open: bool


async def window_from(
    stored_last_inbound: datetime | None, provider: InboundKnowledge, clock: Clock, *, contact: str
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
