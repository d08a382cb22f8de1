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
    {
        "acc",
        "usr",
        "msg",
        "bat",
        "whk",
        "dlv",
        "evt",
        "tpl",
        "con",
        "lst",
        "chat",
        "tok",
        "led",
        "prv",
        "dom",
    }
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

    def next_values(self, count: int) -> range:
        """``count`` consecutive values: one millisecond, the random part counting up."""
        with self._lock:
            now_ms = max(time.time_ns() // 1_000_000, self._last_ms)
            start = int.from_bytes(os.urandom(10), "big") >> 2
            if now_ms == self._last_ms:
                start = max(start, self._last_random + 1)
            if start + count > _RANDOM_MAX:
                now_ms, start = now_ms + 1, 0
            self._last_ms, self._last_random = now_ms, start + count - 1
            base = now_ms << _RANDOM_BITS
            return range(base + start, base + start + count)


_generator = _MonotonicUlid()
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


_SHIFTS = tuple(range(120, -1, -10))


def _encode(value: int) -> str:
    # Two digits (10 bits) a lookup, 13 of them for the 130 bits of 26 digits: half
    # the time of one digit a step.
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    """A new identifier such as ``msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM``."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{_encode(_generator.next_value())}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` new identifiers in increasing order, made at once (bulk inserts)."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return encode_run(prefix, _generator.next_values(count))


def encode_run(prefix: str, values: range) -> list[str]:
    """Identifiers for consecutive values, as :func:`new_id` writes each."""
    ids: list[str] = []
    # Consecutive values share all but their last characters: encode the head once
    # per 2**20 values and look the last four characters up, two at a time.
    high = -1
    head = ""
    for value in values:
        if value >> 20 != high:
            high = value >> 20
            head = f"{prefix}_{_encode(value)[:22]}"
        ids.append(head + _PAIRS[(value >> 10) & 1023] + _PAIRS[value & 1023])
    return ids
