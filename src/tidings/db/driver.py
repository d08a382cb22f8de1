"""Hot statements on SQLite's driver, without SQLAlchemy's per-statement machinery.

A statement through SQLAlchemy's asyncio layer passes a greenlet, an execution
context, its parameter processing and a result object: about 25 µs for a one-row
INSERT given as SQL text, more for a Core statement, where SQLite's own work is
3 µs. A single send runs a handful of such statements in its write (the opt-out
check, the message and its first event, the credit debit and its ledger row), so
on SQLite they go straight to the driver connection beneath the session, in the
session's transaction:

- :func:`sqlite_driver` gives that connection (``None`` on PostgreSQL, whose
  statements keep going through SQLAlchemy and asyncpg);
- :class:`Prepared` is a Core statement compiled once for SQLite, its parameters
  converted by the columns' own bind processors, as SQLAlchemy would.

The driver connection is the aiosqlite-shaped one (:mod:`tidings.db.inline_sqlite`,
or aiosqlite itself with ``TIDINGS_SQLITE_DRIVER=thread``); SQLAlchemy began the
transaction when the session took its connection, and commits it as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler


class DriverCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    async def fetchall(self) -> Sequence[Any]: ...

    async def fetchone(self) -> Any: ...


class DriverConnection(Protocol):
    async def execute(self, sql: str, parameters: Sequence[Any] = ...) -> DriverCursor: ...

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> DriverCursor: ...


_KEPT = "tidings.sqlite_driver"
_Kept = tuple[object, "tuple[DriverConnection, Dialect] | None"]


async def sqlite_driver(session: AsyncSession) -> tuple[DriverConnection, Dialect] | None:
    """The SQLite driver connection under ``session``'s transaction (begun here if it
    was not) and the engine's dialect; None on another database.

    Kept in the session's ``info`` for the rest of its transaction: asking the session
    for its connection costs about 11 µs each time, and a write asks several times.
    """
    sync = session.sync_session
    kept: _Kept | None = sync.info.get(_KEPT)
    if kept is not None:
        transaction = sync.get_transaction()
        if transaction is not None and transaction is kept[0] and transaction.is_active:
            return kept[1]
    connection = await session.connection()
    driver = driver_of(connection)
    found = None if driver is None else (driver, connection.dialect)
    sync.info[_KEPT] = (sync.get_transaction(), found)
    return found


async def autoflushed(session: AsyncSession) -> None:
    """Flush the session's pending ORM changes, as ``session.execute`` does before a
    statement (autoflush): for a statement moved from it to the driver, which must
    see (and be ordered after) what the transaction's earlier units added or changed
    through the ORM. Costs nothing when there are none."""
    sync = session.sync_session
    if sync.autoflush and not sync._is_clean():
        await session.flush()


def driver_of(connection: AsyncConnection) -> DriverConnection | None:
    """The SQLite driver connection beneath a connected ``connection``, or None."""
    if connection.dialect.name != "sqlite":
        return None
    # The connection is connected, so reading its pooled connection does no I/O.
    driver: DriverConnection = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr, assignment]
    return driver


class Prepared:
    """A Core statement run on SQLite's driver, compiled once; Core elsewhere.

    Only for statements whose result columns need no conversion from what SQLite
    stores (text and integers): checked when first compiled.
    """

    def __init__(self, statement: Select[Any] | Update | Insert | Delete) -> None:
        self.statement = statement
        self._plan: tuple[str, list[tuple[str, Any]]] | None = None

    def _compiled(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any]]]:
        if self._plan is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
            for column in compiled._result_columns:
                kind = column[3]
                if kind._cached_result_processor(dialect, None) is not None:
                    raise TypeError(f"{column[0]} needs converting: run it with Core")
            processors = compiled._bind_processors
            self._plan = (
                compiled.string,
                [(name, processors.get(name)) for name in compiled.positiontup],
            )
        return self._plan

    async def _run(
        self, session: AsyncSession, values: Mapping[str, Any]
    ) -> tuple[DriverCursor | None, Any]:
        found = await sqlite_driver(session)
        if found is None:
            connection = await session.connection()
            return None, await connection.execute(self.statement, dict(values))
        driver, dialect = found
        sql, parameters = self._compiled(dialect)
        bound = [
            convert(values[name]) if convert is not None else values[name]
            for name, convert in parameters
        ]
        return await driver.execute(sql, bound), None

    async def first(self, session: AsyncSession, values: Mapping[str, Any]) -> Any:
        """The first row's first value, or None when no row matched."""
        cursor, result = await self._run(session, values)
        if cursor is None:
            return result.scalar()
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def rowcount(self, session: AsyncSession, values: Mapping[str, Any]) -> int:
        """How many rows the statement changed."""
        cursor, result = await self._run(session, values)
        return int((cursor if cursor is not None else result).rowcount)
