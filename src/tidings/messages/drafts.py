"""A message that passed its channel's rules, ready to be stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass
class Draft:
    """A message that passed its channel's rules, ready to be stored."""

    channel: str
    to: str
    sender: str | None
    body: str | None
    content: dict[str, Any] = field(default_factory=dict)
    segments: int | None = None
    encoding: str | None = None
    cost: Decimal = Decimal(0)
    scheduled_at: datetime | None = None
    # Set when the content must name the message (signed tracking links); else new.
    id: str | None = None
    # The channel whose opt-outs the write checks, in its own transaction: a STOP
    # recorded between the rules and the write still refuses the message.
    opt_out_channel: str | None = None
