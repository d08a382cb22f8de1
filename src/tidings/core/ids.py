"""Opaque, prefixed, time-sortable identifiers (``msg_01JD...``).

The part after the prefix is a ULID: 48 bits of milliseconds and 80 random bits in
Crockford base32. Identifiers made in the same millisecond by one process increase
monotonically, so ordering by id is ordering by creation within a process, and
roughly so across processes.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1

PREFIXES = frozenset(
    {"acc", "usr", "msg", "bat", "whk", "dlv", "evt", "tpl", "con", "lst", "chat", "tok", "led"}
)


class _MonotonicUlid:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next_value(self) -> int:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms <= self._last_ms and self._last_random < _RANDOM_MAX:
                now_ms = self._last_ms
                random_part = self._last_random + 1
            else:
                random_part = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms, self._last_random = now_ms, random_part
            return (now_ms << _RANDOM_BITS) | random_part


_generator = _MonotonicUlid()


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new identifier such as ``msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM``."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{_encode(_generator.next_value())}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
