"""Requests waiting for a message's verdict (sent or failed) in this process.

A dispatcher in this process resolves a waiter after committing the verdict. When
delivery runs in another process (the scale-out mode, PostgreSQL), the verdict
feed (:mod:`tidings.messages.verdict_feed`) resolves it when the worker's
notification arrives. Either way the waiting request also reads its message every
``poll_seconds``, so a verdict nobody announced only delays the answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

Answer = dict[str, Any]

# How often a waiting request reads its message when nothing pushes verdicts to
# this process but its own dispatcher (the embedded mode).
LOCAL_POLL_SECONDS = 0.5


class VerdictWaiters:
    def __init__(self, poll_seconds: float = LOCAL_POLL_SECONDS) -> None:
        self._futures: dict[str, list[asyncio.Future[Answer | None]]] = defaultdict(list)
        self.poll_seconds = poll_seconds
        # Told of each new waiter (the verdict feed: its verdict may be known already).
        self.on_register: Callable[[str], None] | None = None
        # Told when nobody here waits for a message any more, its verdict not come
        # (the local bus: the delivery process forgets the wait).
        self.on_abandon: Callable[[str], None] | None = None

    def register(self, message_id: str) -> asyncio.Future[Answer | None]:
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._futures[message_id].append(future)
        if self.on_register is not None:
            self.on_register(message_id)
        return future

    def discard(self, message_id: str, future: asyncio.Future[Answer | None]) -> None:
        waiting = self._futures.get(message_id)
        if waiting and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._futures[message_id]
                if self.on_abandon is not None:
                    self.on_abandon(message_id)

    def resolve(self, message_id: str, answer: Answer | None = None) -> None:
        """The verdict is committed; ``answer`` is the message as the API shows it."""
        for future in self._futures.pop(message_id, ()):
            if not future.done():
                future.set_result(answer)

    def waiting(self, message_id: str) -> bool:
        return message_id in self._futures

    def ids(self) -> Iterable[str]:
        """The messages waited for now."""
        return list(self._futures)

    def __len__(self) -> int:
        return len(self._futures)
