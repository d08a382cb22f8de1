"""One writer at a time across the processes that share a SQLite file, waited for
without blocking the event loop.

SQLite lets one connection write at a time. When two serving processes share the
file (``tidings serve --workers 2``), a group commit that meets the other process's
write waits in SQLite's busy handler, which sleeps in the calling thread: with the
inline driver that is the event loop's, so the process stopped serving requests for
as long as the other process wrote and synced (a millisecond to tens of them), and a
second process gained nothing. The group committers of those processes instead take
an advisory lock on a file beside the database (``flock``) before each transaction:
at once when it is free (one system call), else in a thread of their own while the
loop goes on serving, and they release it once the transaction is durable. SQLite's
own locking stays as it was: writers that do not take this lock (a ``tidings``
command, the bulk inserts' sessions) still wait in its busy handler, which is
correct, only slower.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy.engine import make_url


class WriterLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        # Its own thread, made at the first wait: a wait here must not hold up anyone
        # else's executor work.
        self._waiter: ThreadPoolExecutor | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    async def acquire(self) -> None:
        fd = self._descriptor()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if self._waiter is None:
            self._waiter = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="sqlite-writer-lock"
            )
        waiting = asyncio.get_running_loop().run_in_executor(
            self._waiter, fcntl.flock, fd, fcntl.LOCK_EX
        )
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread takes the lock whatever happens to us: give it back.
            await asyncio.wait([waiting])
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._waiter is not None:
            self._waiter.shutdown(wait=False)
            self._waiter = None


def writer_lock_for(database_url: str) -> WriterLock | None:
    """The lock beside a SQLite file (``<file>.writer-lock``); None for PostgreSQL or
    an in-memory database, which need none."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return WriterLock(Path(f"{url.database}.writer-lock"))
