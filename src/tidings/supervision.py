"""Background tasks that are watched: a task that dies is logged with its cause and
started again after a backoff, and ``/readyz`` says it is down meanwhile.

Each background loop of a process (the dispatcher, the inbox processor, the
webhook dispatcher, the sweeps) runs under a :class:`Supervisor`. Loops catch and
log their own per-iteration failures; what reaches the supervisor is a loop that
ended or raised, which must never go unnoticed (before, such a task died silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tidings.supervisor")

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0


@dataclass
class _Watched:
    name: str
    start: Callable[[], Coroutine[Any, Any, None]]
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    # Set before the task is asked to end, so its ending is not mistaken for a death.
    ending: bool = False
    down_since: float | None = None
    last_error: str | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}
        self._stopping = False

    def start(self, name: str, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        watched = _Watched(name, start)
        self._watched[name] = watched
        watched.watcher = asyncio.create_task(self._watch(watched), name=f"supervise-{name}")

    async def _watch(self, watched: _Watched) -> None:
        backoff = INITIAL_BACKOFF
        while not self._stopping:
            watched.task = asyncio.create_task(watched.start(), name=watched.name)
            began = time.monotonic()
            try:
                await asyncio.shield(watched.task)
                if self._stopping or watched.ending:
                    return
                watched.last_error = "stopped unexpectedly"
                log.error("background task %s ended unexpectedly; restarting", watched.name)
            except asyncio.CancelledError:
                if self._stopping or watched.task.cancelled():
                    return
                raise
            except Exception as error:
                if self._stopping or watched.ending:
                    return
                watched.last_error = f"{type(error).__name__}: {error}"[:300]
                log.exception("background task %s died; restarting", watched.name)
            watched.down_since = watched.down_since or time.monotonic()
            watched.restarts += 1
            if time.monotonic() - began > MAX_BACKOFF:
                backoff = INITIAL_BACKOFF
            await asyncio.sleep(backoff * (1 + random.random() / 2))
            backoff = min(backoff * 2, MAX_BACKOFF)
            watched.down_since = None

    def down(self) -> dict[str, str]:
        """Tasks not running now, with why."""
        found = {}
        for name, watched in self._watched.items():
            running = watched.task is not None and not watched.task.done()
            if not running and not self._stopping:
                found[name] = watched.last_error or "not running"
        return found

    def restarts(self) -> dict[str, int]:
        return {name: watched.restarts for name, watched in self._watched.items()}

    async def stop(
        self,
        name: str,
        *,
        ask: Callable[[], Coroutine[Any, Any, None]] | None = None,
        grace: float | None = None,
    ) -> None:
        """Stop one task: ``ask`` it to end, and cancel it unless it ends by itself
        within ``grace``."""
        watched = self._watched.pop(name, None)
        if watched is None:
            return
        watched.ending = True
        if ask is not None:
            await ask()
        if watched.watcher is not None:
            watched.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watched.watcher
        task = watched.task
        if task is None or task.done():
            return
        if grace is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def stop_all(self) -> None:
        self._stopping = True
        for name in list(self._watched):
            await self.stop(name)
