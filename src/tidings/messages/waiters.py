"""Requests waiting for a message's verdict (sent or failed) in this process.

The dispatcher resolves a waiter after committing the verdict. When delivery
runs in another process (scale-out), nobody here resolves it, so the waiting
request also looks at the database now and then.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

Answer = dict[str, Any]


class VerdictWaiters:
    def __init__(self) -> None:
        self._futures: dict[str, list[asyncio.Future[Answer | None]]] = defaultdict(list)

    def register(self, message_id: str) -> asyncio.Future[Answer | None]:
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._futures[message_id].append(future)
        return future

    def discard(self, message_id: str, future: asyncio.Future[Answer | None]) -> None:
        waiting = self._futures.get(message_id)
        if waiting and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._futures[message_id]

    def resolve(self, message_id: str, answer: Answer | None = None) -> None:
        """The verdict is committed; ``answer`` is the message as the API shows it."""
        for future in self._futures.pop(message_id, ()):
            if not future.done():
                future.set_result(answer)

    def waiting(self, message_id: str) -> bool:
        return message_id in self._futures

    def __len__(self) -> int:
        return len(self._futures)
