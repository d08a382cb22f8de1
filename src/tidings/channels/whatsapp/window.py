"""The 24-hour customer service window (spec section 5).

A contact's message opens it for 24 hours; each further message restarts it.
Outside it only template notifications may be sent. The contact's last inbound
message comes from the database (the caller reads it), or from what the provider
alone knows (the sandbox's simulated contacts), whichever is later.

WhatsApp has the last word: when it refuses a free-form message because the
window is closed (Meta's error 131047, "Re-engagement message"), the window is
closed from that moment, whatever Tidings counted, until the contact writes
again. The caller reads that moment too (the newest free-form message that
failed with ``outside_customer_service_window``, see
:mod:`tidings.messages.conversations`).
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
    # When WhatsApp refused a message as outside the window (it stays closed until
    # the contact writes again); None unless that is what closed it.
    closed_by_whatsapp_at: datetime | None = None


async def window_from(
    stored_last_inbound: datetime | None,
    provider: InboundKnowledge,
    clock: Clock,
    *,
    contact: str,
    closed_at: datetime | None = None,
) -> Window:
    """The window given the contact's last inbound message found in the database
    (for callers that read it for many contacts in one query) and the moment
    WhatsApp last said it was closed (``closed_at``), if it did."""
    candidates = [
        moment
        for moment in (stored_last_inbound, await provider.last_inbound_at(contact))
        if moment is not None
    ]
    if not candidates:
        return Window(None, None, False)
    last = max(candidates)
    return window_of(last, clock, closed_at=closed_at)


def window_of(last: datetime | None, clock: Clock, *, closed_at: datetime | None) -> Window:
    """The window after the contact's last message ``last``; WhatsApp's refusal at
    ``closed_at`` closes it unless the contact wrote after that."""
    if last is None:
        return Window(None, None, False)
    expires = last + WINDOW
    if closed_at is not None and closed_since(closed_at, last):
        return Window(last, min(expires, closed_at), False, closed_at)
    return Window(last, expires, clock.now() < expires)


def closed_since(closed_at: datetime | None, last: datetime) -> bool:
    """Whether WhatsApp's refusal at ``closed_at`` came after the contact's last
    message. Meta stamps messages in whole seconds: a refusal in the same second
    as the message counts as before it (open is the cheaper mistake: a wrong send
    is refused again and closes the window, a wrong refusal stops a reply)."""
    return closed_at is not None and closed_at.replace(microsecond=0) > last
