"""One read in flight per key, shared by everyone who asks for it meanwhile.

The per-process caches in front of the database (a token's state, an account's
routes, its phone country) run out every few seconds; under load every request in
flight at that moment would read the same row at once (hundreds of reads per expiry
at 64 clients). :class:`SingleFlight` starts one read and lets the others await it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._reading: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, shared with whoever asks for ``key`` while it runs.
        A caller cancelled while waiting does not cancel the read for the others."""
        pending = self._reading.get(key)
        if pending is None:
            started: asyncio.Future[T] = asyncio.ensure_future(read())
            self._reading[key] = started

            def done(_: object) -> None:
                if self._reading.get(key) is started:
                    del self._reading[key]

            started.add_done_callback(done)
            pending = started
        return await asyncio.shield(pending)

    def forget(self, key: K) -> None:
        """Let the next caller start a read of its own: the one in flight may have
        begun before a change it must not miss."""
        self._reading.pop(key, None)
