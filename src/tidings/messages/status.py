"""The message status machine: the only code that decides a status change.

    scheduled ─► queued ─► sent ─► delivered ─► read
        │          │  │       │
        │          │  └─► failed        (the provider never accepted it)
        │          │          └─► undelivered (accepted, then not delivered)
        └──────────┴─► canceled

A status never moves backwards: a report that would (a late ``delivered`` after
``read``, ``sent`` after ``delivered``) is kept as an event that did not apply.
``read``, ``failed``, ``undelivered``, ``canceled`` and ``received`` are terminal;
``delivered`` is final for SMS and email but a WhatsApp ``read`` may follow.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"
    RECEIVED = "received"


_PROGRESS: dict[str, int] = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.READ: 4,
}

TERMINAL = frozenset(
    {Status.READ, Status.FAILED, Status.UNDELIVERED, Status.CANCELED, Status.RECEIVED}
)
# Statuses whose outcome is known: nothing more is sent, only receipts may follow.
FINAL = TERMINAL | {Status.DELIVERED}
# Statuses a dispatcher still has to submit to a provider.
PENDING = frozenset({Status.SCHEDULED, Status.QUEUED})

_ALLOWED_FROM = {
    Status.FAILED: PENDING,
    Status.CANCELED: PENDING,
    Status.UNDELIVERED: frozenset({Status.QUEUED, Status.SENT}),
}


_BY_VALUE = {status.value: status for status in Status}


def status_of(value: str) -> Status:
    """``Status(value)``, by a dictionary lookup for a known value (the enum's own
    lookup costs about a microsecond); an unknown one raises as ``Status`` does."""
    try:
        return _BY_VALUE[value]
    except (KeyError, TypeError):
        return Status(value)


def applies(current: str, new: Status) -> bool:
    """Whether a report of ``new`` changes a message that is ``current`` (a status,
    or its value as stored: a ``Status`` is equal to its value, and hashed alike)."""
    if current in TERMINAL or new == current:
        return False
    if new in _PROGRESS:
        return current in _PROGRESS and _PROGRESS[new] > _PROGRESS[current]
    allowed = _ALLOWED_FROM.get(new)
    return allowed is not None and current in allowed
