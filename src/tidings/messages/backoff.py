"""Retry delays: exponential backoff with jitter, honouring a provider's hint."""

from __future__ import annotations

import random


def retry_delay(attempt: int, *, base: float, maximum: float, hint: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: up to ``base * 2^(attempt-1)``,
    at least half of it (so retries spread out but never bunch at zero)."""
    ceiling = min(maximum, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    if hint is not None:
        delay = max(delay, min(hint, maximum))
    return delay
