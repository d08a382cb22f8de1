"""An aiosqlite-shaped SQLite driver that runs each call in the event loop's thread.

aiosqlite gives every connection a thread and hands each call to it through a
queue, then wakes the event loop when it is done: two thread switches per
statement, which cost more than the statement itself (a lookup by primary key
takes microseconds; the round trip through the thread, about half a
millisecond, and much more when the loop is busy). SQLAlchemy's aiosqlite
dialect is used unchanged over this module instead, so every call is a plain
``sqlite3`` call.

This is safe here because of how Tidings writes: every hot-path write goes
through the one group committer of the process, and no transaction awaits
anything but database calls between its first write and its commit, so write
transactions never interleave inside a process and never wait on each other's
locks. A lock held by another process (a ``tidings`` command run beside the
server) makes a statement wait for up to the busy timeout, blocking the loop
meanwhile; that is the price of the embedded mode's single file, and why the
scale-out mode uses PostgreSQL. ``TIDINGS_SQLITE_DRIVER=thread`` selects
aiosqlite instead.

Two calls do not run inline. An ``executemany`` of many rows (a bulk request's
inserts) writes pages to the log as it goes, which can wait on a busy disk for
tens to hundreds of milliseconds. And the commit of a transaction that wrote:
with ``synchronous=FULL`` it waits for the write-ahead log to reach the disk (an
``fsync``, a fraction of a millisecond to several under load), time in which the
loop could serve other requests. Both run in a thread of their own (``sqlite3`` lets
the GIL go meanwhile), and the caller resumes once it is durable. While it runs,
another connection that tries to write waits for the lock on the loop's thread, for
no longer than that sync: in practice none does, as the hot-path writes all go
through the group committer, which starts its next transaction after this commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from sqlite3 import (  # noqa: F401 - the DBAPI surface SQLAlchemy's dialect reads
    DatabaseError,
    Error,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    sqlite_version,
    sqlite_version_info,
)
from types import SimpleNamespace
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

# Commits that sync to disk, one at a time (SQLite has one writer anyway), and the
# statements run for many rows at once (bulk inserts).
_commits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
# From this many rows an ``executemany`` goes to that thread; the hot path's group
# commits stay well below it (a bulk request inserts 200 rows per statement).
LARGE_EXECUTEMANY = 100

# What to run in the commit thread as soon as a commit is durable, before the loop
# hears of it: the group committer releases the writer lock there
# (:mod:`tidings.db.writer_lock`), so another process's writer waits only for the
# commit itself, not also for this loop to come back to the committer (tens of
# milliseconds on a loop busy with requests).
after_commit: ContextVar[Callable[[], None] | None] = ContextVar("after_commit", default=None)


async def _in_commit_thread(function: Callable[..., Any], *args: Any) -> None:
    done = asyncio.get_running_loop().run_in_executor(_commits, function, *args)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        # It goes on in its thread whatever happens to the caller: the connection is
        # not used again (rolled back, returned) before it ends.
        await asyncio.wait([done])
        raise


def _commit_then(connection: sqlite3.Connection, then: Callable[[], None]) -> None:
    try:
        connection.commit()
    finally:
        then()


class Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        self._cursor.execute(sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        if isinstance(parameters, list) and len(parameters) >= LARGE_EXECUTEMANY:
            # A bulk request's slice of rows writes enough pages to meet the disk
            # (tens to hundreds of ms on a busy one): in the commit thread, as a
            # commit, the loop serving meanwhile (``sqlite3`` lets the GIL go while
            # SQLite works).
            await _in_commit_thread(self._cursor.executemany, sql, parameters)
        else:
            self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set the
    isolation level: the request is carried out at once."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class Connection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow(connection)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        return await self.cursor().executemany(sql, parameters)

    async def commit(self) -> None:
        if not self._conn.in_transaction:
            # Nothing written (a read-only session): nothing to sync.
            return
        then = after_commit.get()
        if then is None:
            await _in_commit_thread(self._conn.commit)
        else:
            await _in_commit_thread(_commit_then, self._conn, then)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None

    def stop(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None


class _Connecting:
    """What ``connect`` returns: awaitable like aiosqlite's, with its ``_thread``."""

    def __init__(self, database: str, kwargs: dict[str, Any]) -> None:
        self._database = database
        self._kwargs = kwargs
        self._thread = SimpleNamespace(daemon=True)

    def __await__(self) -> Generator[Any, None, Connection]:
        if False:  # pragma: no cover - makes this a generator without suspending
            yield
        kwargs = dict(self._kwargs)
        kwargs["check_same_thread"] = False
        return Connection(sqlite3.connect(self._database, **kwargs))


def connect(database: str, **kwargs: Any) -> _Connecting:
    return _Connecting(database, kwargs)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The module object to give ``create_async_engine(..., module=...)``."""
    import sys

    return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)
