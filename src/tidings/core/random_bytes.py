"""``os.urandom``'s bytes, read 4 KiB at a time, for ids made on hot paths.

A request id or a simulated provider id each cost one system call when read from
``os.urandom`` one by one; :func:`random_bytes` hands them out of a buffer refilled
from the same source, one system call per few hundred ids. The buffer is emptied in
a forked child, so that two processes never give out the same bytes.
"""

from __future__ import annotations

import os


class _RandomBytes:
    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._at = 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._buffer):
            self._buffer, self._at = os.urandom(max(self._chunk, size)), 0
        start = self._at
        self._at = start + size
        return self._buffer[start : start + size]

    def forget(self) -> None:
        self._buffer, self._at = b"", 0


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


def random_bytes(size: int) -> bytes:
    """``size`` bytes from ``os.urandom`` (by way of the buffer)."""
    return _random.take(size)
