"""Fixed-window counters shared by the processes of one machine (``serve --workers N``).

Each process of ``tidings serve --workers N`` is a full copy of the application; with
counters in process memory (:class:`tidings.core.windows.FixedWindowCounter`) an
account could make N times its per-minute limit. These counters live in a small file
of the data directory instead (``rate-windows``, 2 MiB), mapped into the memory of
every process that counts, each operation under an advisory lock on that file
(``flock``: taken and given back in about a microsecond each when free). The file's
content only matters while the processes run: a window ends on its own, and a file
left from an earlier run holds nothing but ended windows.

A slot is 32 bytes: the key's 128-bit BLAKE2b digest, its window's start (wall-clock
seconds, the same clock in every process) and its count. A key's slot is found by
open addressing from its digest (up to :data:`PROBES` slots on): the first slot with
its digest, else the first whose window has ended, else (every probed slot in use by
a live window, which takes tens of thousands of active keys) the one whose window
started first. A slot never used (all zeros) ends the search, as nothing was ever
placed past it.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from tidings.core.windows import WindowReading, window_reading

SLOTS = 65_536
PROBES = 64
_SLOT = struct.Struct("<16sdq")
_NEVER_USED = bytes(16)


@lru_cache(maxsize=4096)
def _digest(key: str) -> bytes:
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    # All zeros marks a slot never used; a key whose digest it is (2^-128) takes another.
    return digest if digest != _NEVER_USED else b"\x01" * 16


class SharedWindowCounter:
    """:class:`~tidings.core.windows.FixedWindowCounter`'s counting (``hit``,
    ``peek``, ``count``, ``reset``) and the login throttle's (``add``, ``give_back``,
    ``forget``, under ``locked``), in a file shared by the processes that open it."""

    def __init__(
        self,
        path: Path,
        window_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
        slots: int = SLOTS,
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._slots = slots
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = slots * _SLOT.size
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size != size:
                # A new file, or one sized for other slots: start empty.
                os.ftruncate(self._fd, 0)
                os.ftruncate(self._fd, size)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, size)
        self._depth = 0

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's lock across several operations (their check and count
        made at once for every process); the operations inside take it no more."""
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _ended(self, started: float, now: float) -> bool:
        # A start in the future is a clock set back: that window is over too.
        return now - started >= self._window or started > now

    def _slot_of(self, digest: bytes, now: float) -> tuple[int, bool]:
        """The offset of ``digest``'s slot and whether it holds it (else the slot it
        would take: never used, ended, or the oldest window probed)."""
        first = int.from_bytes(digest[:8], "little") % self._slots
        reusable = oldest = -1
        oldest_start = now
        for probe in range(PROBES):
            offset = ((first + probe) % self._slots) * _SLOT.size
            held, started, _ = _SLOT.unpack_from(self._map, offset)
            if held == digest:
                return offset, True
            if held == _NEVER_USED:
                return (reusable if reusable >= 0 else offset), False
            if reusable < 0 and self._ended(started, now):
                reusable = offset
            if started < oldest_start:
                oldest, oldest_start = offset, started
        if reusable >= 0:
            return reusable, False
        # Every probed window started this very instant: take the first.
        return (oldest if oldest >= 0 else first * _SLOT.size), False

    def add(self, key: str, delta: int) -> tuple[float, int]:
        """Add ``delta`` (0 to read) to ``key``'s count in its current window, a new
        one when it has none; the window's start and its count."""
        digest = _digest(key)
        with self.locked():
            now = self._clock()
            offset, held = self._slot_of(digest, now)
            started, count = now, 0
            if held:
                _, started, count = _SLOT.unpack_from(self._map, offset)
                if self._ended(started, now):
                    started, count = now, 0
            count += delta
            _SLOT.pack_into(self._map, offset, digest, started, count)
            return started, count

    def give_back(self, key: str, started: float) -> None:
        """One count less for ``key``, only in the window that began at ``started``."""
        digest = _digest(key)
        with self.locked():
            offset, held = self._slot_of(digest, self._clock())
            if held:
                _, current, count = _SLOT.unpack_from(self._map, offset)
                if current == started and count > 0:
                    _SLOT.pack_into(self._map, offset, digest, current, count - 1)

    def seconds_left(self, started: float) -> int:
        return max(1, math.ceil(self._window - (self._clock() - started)))

    def forget(self, key: str) -> None:
        """End ``key``'s window."""
        digest = _digest(key)
        with self.locked():
            offset, held = self._slot_of(digest, self._clock())
            if held:
                _SLOT.pack_into(self._map, offset, digest, 0.0, 0)

    def hit(self, key: str, limit: int) -> WindowReading:
        """Count one event for ``key`` and say where the window stands."""
        started, count = self.add(key, 1)
        elapsed = self._clock() - started
        return window_reading(self._window, elapsed, count, limit, exceeded=count > limit)

    def peek(self, key: str, limit: int) -> WindowReading:
        started, count = self.add(key, 0)
        elapsed = self._clock() - started
        return window_reading(self._window, elapsed, count, limit, exceeded=count >= limit)

    def count(self, key: str) -> int:
        return self.add(key, 0)[1]

    def reset(self, key: str) -> None:
        self.forget(key)
