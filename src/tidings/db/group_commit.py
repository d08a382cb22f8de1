"""Group commit: many requests' writes in one transaction.

SQLite takes one writer at a time and each commit costs a sync to disk, so one
transaction per request caps single sends at about a thousand a second and
makes concurrent requests queue for the write lock. Requests instead hand their
write (a *unit*: an async function of a session) to one writer task, which runs
every unit waiting at that moment in a single transaction, commits once, and
then answers each request. PostgreSQL gains too: fewer commits, fewer round
trips.

A unit must do its checks before its writes and may raise (a 402, say). If any
unit of a batch raises, the batch is rolled back and its units run again one by
one, each in its own transaction, so one request's failure never affects
another's outcome.

On SQLite the writer keeps one connection for its transactions rather than taking
one from the pool for each: the pool's checkout and return (a reset each time) cost
about 0.15 ms of CPU a transaction, which a batch of one or a few sends pays nearly
whole (docs/performance.md, "What a transaction costs before its statements"). A
SQLite connection does not drop; a PostgreSQL one can, so there the pool stays. For
the same reason it keeps one session on that connection, closed after each
transaction (which ends the transaction and forgets its objects) and used again:
making a session costs about 0.1 ms more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from tidings.db.inline_sqlite import after_commit
from tidings.db.writer_lock import WriterLock

T = TypeVar("T")
Unit = Callable[[AsyncSession], Awaitable[Any]]

CLOSE_GRACE_SECONDS = 10.0
LOCK_WAIT_SECONDS = 30.0

log = logging.getLogger("tidings.db")


class GroupCommitter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = 256,
        writer_lock: WriterLock | None = None,
    ) -> None:
        self._sessions = sessions
        self._writer_lock = writer_lock
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Unit, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._committing = False
        bind = sessions.kw.get("bind")
        # The engine whose connection the writer keeps (SQLite's), or None: the pool's.
        self._holding_engine = (
            bind if isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite" else None
        )
        # The held connection and the one session on it, made together at first use.
        self._held: tuple[AsyncConnection, AsyncSession] | None = None

    async def submit(self, unit: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``unit`` in the next group transaction; its result once committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((unit, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        result: T = await asyncio.shield(future)
        return result

    async def _run(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                # From here a batch is in hand: close() waits for it, lock wait included.
                self._committing = True
                try:
                    # One turn of the loop lets requests that are ready to write join.
                    await asyncio.sleep(0)
                    await self._take_lock_and_commit(batch)
                finally:
                    self._committing = False
        finally:
            # The writer's connection lives as long as its task, however that ends
            # (close(), or the event loop's own end cancelling it).
            await self._let_connection_go()

    async def _take_lock_and_commit(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        # The writer lock is taken before the batch is closed: units that arrive while
        # another process writes ride in this transaction instead of waiting for that
        # process's next turn too (fewer, larger commits on a shared file).
        holding = await self._take_writer_lock()
        try:
            while not self._queue.empty() and len(batch) < self._max_batch:
                batch.append(self._queue.get_nowait())
            await self._commit(batch, holding=holding)
        finally:
            if holding and self._writer_lock is not None:
                # A no-op once the commit let it go; else a failure left it taken.
                self._writer_lock.release()

    async def _take_writer_lock(self) -> bool:
        if self._writer_lock is None:
            return False
        await self._writer_lock.acquire()
        return True

    async def _commit(
        self, batch: list[tuple[Unit, asyncio.Future[Any]]], *, holding: bool = False
    ) -> None:
        try:
            results = await self._attempt(batch, holding=holding)
        except Exception as error:
            if len(batch) == 1:
                _, future = batch[0]
                if not future.done():
                    future.set_exception(error)
                return
            for item in batch:
                await self._commit([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _attempt(
        self, batch: list[tuple[Unit, asyncio.Future[Any]]], *, holding: bool = False
    ) -> list[Any]:
        """Run the batch in one transaction, waiting (without blocking the loop) while
        another connection holds SQLite's write lock. ``holding``: the writer lock is
        already taken for the first try."""
        delay = 0.005
        deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
        while True:
            if self._writer_lock is not None and not holding:
                await self._writer_lock.acquire()
            holding = False
            try:
                results = []
                session = await self._session()
                try:
                    for unit, _ in batch:
                        results.append(await unit(session))
                    await self._commit_session(session)
                finally:
                    await self._end(session)
                return results
            except OperationalError as error:
                locked = "locked" in str(error) or "busy" in str(error)
                if not locked or asyncio.get_running_loop().time() > deadline:
                    raise
            finally:
                if self._writer_lock is not None:
                    self._writer_lock.release()
            # Another writer (one that does not take the writer lock) holds SQLite's.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _session(self) -> AsyncSession:
        """A session for one transaction: on SQLite, the one on the writer's connection."""
        if self._holding_engine is None:
            return self._sessions()
        if self._held is None:
            connection = await self._holding_engine.connect()
            self._held = (connection, self._sessions(bind=connection))
        return self._held[1]

    async def _end(self, session: AsyncSession) -> None:
        """End the transaction's session: rolled back if it did not commit, its objects
        forgotten, and what units kept in its ``info`` for the transaction dropped."""
        await session.close()
        session.info.clear()

    async def _let_connection_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held[0].close()

    async def _commit_session(self, session: AsyncSession) -> None:
        if self._writer_lock is None:
            await session.commit()
            return
        # The lock is let go in the commit thread once the commit is durable; the
        # ``finally`` above then finds it free already (a no-op).
        releasing = after_commit.set(self._writer_lock.release)
        try:
            await session.commit()
        finally:
            after_commit.reset(releasing)

    async def close(self) -> None:
        """Let the writer commit what is waiting (for up to 10 s), then stop it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_GRACE_SECONDS
        while self._task is not None and not self._task.done() and loop.time() < deadline:
            if self._queue.empty() and not self._committing:
                break
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._let_connection_go()
        if self._writer_lock is not None:
            self._writer_lock.close()
