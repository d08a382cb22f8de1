"""Fast multi-row INSERTs and UPDATEs for bulk paths (design section 2).

SQLAlchemy Core's ``executemany`` runs every value of every row through its
type machinery, which costs more than SQLite's own work: 100,000 message rows
take about 5 s here, against 1.6 s handed to the driver directly. On SQLite
this module converts values with the columns' own bind processors, once for
the values every row shares and per row only for columns that need it, then
hands plain tuples to the driver connection itself (:mod:`tidings.db.driver`:
SQLAlchemy's ``exec_driver_sql`` still cost about 25 µs a statement, and a single
send's write is a few one-row statements). PostgreSQL (asyncpg) gets the Core
statement, whose ``executemany`` it runs efficiently.

UTC timestamps, the commonest converted values, get a processor of their own
(:func:`_utc_text`): the same text as SQLAlchemy's (a TypeDecorator around SQLite's
``DATETIME``, which formats through a dict), in about half the time, and a batch's
rows mostly share one timestamp object, which is converted once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Column, Dialect, Table, bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import UtcDateTime
from tidings.db.driver import sqlite_driver

CHUNK = 5_000


async def insert_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    shared: Mapping[str, Any] | None = None,
    ignore_conflicts: Sequence[str] | None = None,
) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``), each completed with the
    ``shared`` values; the number of rows given. With ``ignore_conflicts``, a row
    that conflicts with a stored one on those columns' unique index (any unique
    index when empty) is skipped (``ON CONFLICT ... DO NOTHING``)."""
    shared = dict(shared or {})
    names = [*columns, *shared]
    conflict = None if ignore_conflicts is None else tuple(ignore_conflicts)
    found = await sqlite_driver(session)
    if found is None:
        statement: Any = insert(table)
        if conflict is not None:
            statement = pg_insert(table).on_conflict_do_nothing(index_elements=conflict or None)
        count = 0
        for chunk in _chunks(rows):
            await session.execute(
                statement,
                [dict(zip(names, (*row, *shared.values()), strict=True)) for row in chunk],
            )
            count += len(chunk)
        return count

    driver, dialect = found
    sql, processors = _insert_plan(table, tuple(names), dialect, conflict)
    tail = tuple(
        convert(value) if (convert := processors[len(columns) + index]) else value
        for index, value in enumerate(shared.values())
    )
    converting = [(index, p) for index, p in enumerate(processors[: len(columns)]) if p]
    count = 0
    for chunk in _chunks(rows):
        prepared = _converted(chunk, converting, tail)
        await driver.executemany(sql, prepared)
        count += len(prepared)
    return count


def bound_insert(
    table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]], dialect: Dialect
) -> tuple[str, list[tuple[Any, ...]]]:
    """SQLite: the INSERT of ``columns`` as SQL text for the driver, and ``rows`` bound
    by the columns' processors as :func:`insert_rows` binds them."""
    sql, processors = _insert_plan(table, columns, dialect)
    converting = [(index, convert) for index, convert in enumerate(processors) if convert]
    return sql, _converted(list(rows), converting)


def _converted(
    chunk: list[Sequence[Any]], converting: list[tuple[int, Any]], tail: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """The rows with the values that need it bound by their column's processor, each
    followed by ``tail``."""
    if not converting:
        return [(*row, *tail) for row in chunk]
    prepared = [list(row) for row in chunk]
    for index, convert in converting:
        if type(convert) is _Json:
            # The same object (a batch's shared detail, None) serialised once: the
            # rows hold every value, so no id is reused meanwhile.
            serialise = convert.convert
            memo: dict[int, Any] = {}
            for values in prepared:
                value = values[index]
                text = memo.get(id(value))
                if text is None:
                    text = memo[id(value)] = serialise(value)
                values[index] = text
        else:
            for values in prepared:
                values[index] = convert(values[index])
    return [(*values, *tail) for values in prepared]


class _Json:
    """A JSON column's bind processor on SQLite (:func:`_converted` serialises each
    object once per statement)."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert

    def __call__(self, value: Any) -> Any:
        return self.convert(value)


def _utc_text() -> Callable[[Any], Any]:
    """A UtcDateTime column's bind processor on SQLite: naive UTC as
    ``YYYY-MM-DD HH:MM:SS.ffffff``, as SQLAlchemy stores it; the last value's text
    is kept, as the rows of a batch share their timestamp."""
    last: list[tuple[Any, Any]] = [(None, None)]

    def convert(value: Any) -> Any:
        if value is None:
            return None
        seen, text = last[0]
        if value is seen:
            return text
        if type(value) is not datetime:
            raise TypeError(f"a UTC timestamp must be a datetime, not {type(value).__name__}")
        moment = value if value.tzinfo is None or value.tzinfo is UTC else value.astimezone(UTC)
        # isoformat(" ", "microseconds")[:26], the naive text stored, in two thirds of
        # the time: an aware value's isoformat also formats its offset, then cut off.
        text = f"{moment.date().isoformat()} {moment.time().isoformat('microseconds')}"
        last[0] = (value, text)
        return text

    return convert


class StoredTimes:
    """UTC timestamps' stored text (:func:`_utc_text`'s) for the statements of one
    write, each value converted once: a receipt's time is its message's update time
    and its event's, in two statements. Values are kept with their text, so an id is
    never reused meanwhile; one instance per write."""

    __slots__ = ("_convert", "_texts")

    def __init__(self) -> None:
        self._convert = _utc_text()
        self._texts: dict[int, tuple[Any, Any]] = {}

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        found = self._texts.get(id(value))
        if found is not None:
            return found[1]
        text = self._convert(value)
        self._texts[id(value)] = (value, text)
        return text


def _sharing(
    table: Table, names: Sequence[str], processors: Sequence[Any], times: StoredTimes
) -> list[tuple[int, Any]]:
    """The processors to run, UTC timestamps' through ``times``."""
    timestamps = _timestamps(table, tuple(names))
    return [
        (index, times if index in timestamps else convert)
        for index, convert in enumerate(processors)
        if convert
    ]


@lru_cache(maxsize=256)
def _timestamps(table: Table, names: tuple[str, ...]) -> frozenset[int]:
    """The positions of ``names`` that are UTC timestamp columns of ``table``."""
    return frozenset(
        index for index, name in enumerate(names) if isinstance(table.c[name].type, UtcDateTime)
    )


async def insert_rows_sharing(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    times: StoredTimes,
) -> None:
    """:func:`insert_rows` of ``rows`` (no shared values, no conflicts), with UTC
    timestamps converted through ``times`` on SQLite."""
    found = await sqlite_driver(session)
    if found is None:
        await insert_rows(session, table, columns, rows)
        return
    driver, dialect = found
    sql, processors = _insert_plan(table, tuple(columns), dialect)
    converting = _sharing(table, columns, processors, times)
    for chunk in _chunks(rows):
        await driver.executemany(sql, _converted(chunk, converting))


def _processor(column: Column[Any], dialect: Dialect) -> Any:
    if dialect.name == "sqlite" and isinstance(column.type, UtcDateTime):
        return _utc_text()
    convert = column.type._cached_bind_processor(dialect)
    if convert is not None and dialect.name == "sqlite" and isinstance(column.type, JSON):
        return _Json(convert)
    return convert


@lru_cache(maxsize=256)
def _insert_plan(
    table: Table,
    names: tuple[str, ...],
    dialect: Dialect,
    conflict: tuple[str, ...] | None = None,
) -> tuple[str, list[Any]]:
    """The INSERT of ``names`` and each column's bind processor, made once: single
    sends insert one row at a time, where building them cost as much as the row."""
    quote = dialect.identifier_preparer.quote
    # Names come from the table's metadata, never from a request.
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    if conflict is not None:
        target = f" ({', '.join(quote(name) for name in conflict)})" if conflict else ""
        sql += f" ON CONFLICT{target} DO NOTHING"
    return sql, [_processor(table.c[name], dialect) for name in names]


def utc_datetime(value: Any) -> datetime | None:
    """A UtcDateTime column's value read back on SQLite: what its result processor
    gives (SQLite's ``DATETIME`` parses the text with ``fromisoformat``, then
    :func:`tidings.core.clock.as_utc`), without the TypeDecorator's layers."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        # replace(tzinfo=UTC)'s value, at a fifth of its cost (its keywords' parsing).
        return datetime.combine(moment.date(), moment.time(), UTC)
    return moment.astimezone(UTC)


@lru_cache(maxsize=256)
def result_plan(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """For rows of ``names`` read from ``table`` on SQLite's driver: the position and
    result processor of each column whose stored value needs converting (the
    columns' own processors, UTC timestamps through :func:`utc_datetime`)."""
    plan = []
    for index, name in enumerate(names):
        column = table.c[name]
        if isinstance(column.type, UtcDateTime):
            plan.append((index, utc_datetime))
            continue
        convert = column.type._cached_result_processor(dialect, None)
        if convert is not None:
            plan.append((index, _JsonRead(convert) if isinstance(column.type, JSON) else convert))
    return tuple(plan)


class _JsonRead:
    """A JSON column's result processor (the engine's deserializer is json.loads: no
    engine sets another): the empty object, most messages' ``content``, is made
    without parsing its text."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert

    def __call__(self, value: Any) -> Any:
        return {} if value == "{}" else self.convert(value)


@lru_cache(maxsize=1024)
def placeholders(count: int) -> str:
    """``?, ?, ...`` for an ``IN`` list of ``count`` values."""
    return ", ".join("?" * count)


@lru_cache(maxsize=256)
def select_in(
    table: Table,
    names: tuple[str, ...],
    dialect: Dialect,
    key: str,
    count: int,
    *,
    equal: tuple[str, ...] = (),
    order_by: str | None = None,
) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """SQLite: ``SELECT names FROM table WHERE <each of equal> = ? AND key IN (?, ...)``
    for ``count`` values (``ORDER BY order_by``), as SQL text for the driver, and the
    :func:`result_plan` of its rows. Its parameters: the ``equal`` values, then the keys."""
    quote = dialect.identifier_preparer.quote
    conditions = [f"{quote(name)} = ?" for name in equal]
    conditions.append(f"{quote(key)} IN ({placeholders(count)})")
    # Names come from the table's metadata, never from a request.
    sql = (
        f"SELECT {', '.join(quote(name) for name in names)} "  # noqa: S608
        f"FROM {quote(table.name)} WHERE {' AND '.join(conditions)}"
    )
    if order_by is not None:
        sql += f" ORDER BY {quote(order_by)}"
    return sql, result_plan(table, names, dialect)


def utc_param(value: datetime) -> str:
    """A timestamp compared with a UtcDateTime column on SQLite: the stored text."""
    return _utc_text()(value)  # type: ignore[no-any-return]


async def select_rows(
    session: AsyncSession,
    sql: str,
    parameters: Sequence[Any],
    converting: Sequence[tuple[int, Callable[[Any], Any]]],
) -> list[list[Any]]:
    """Run a SELECT on SQLite's driver (:func:`tidings.db.driver.sqlite_driver` must
    have found one) and convert each row's values that need it."""
    found = await sqlite_driver(session)
    assert found is not None, "select_rows runs on SQLite's driver only"
    cursor = await found[0].execute(sql, parameters)
    rows = [list(row) for row in await cursor.fetchall()]
    # Rows read together share many of their times (a batch's verdict time, a new
    # message's created and updated): each text parsed once (datetimes are immutable).
    moments: dict[str, datetime | None] = {}
    for index, convert in converting:
        if convert is utc_datetime:
            for row in rows:
                value = row[index]
                if value is not None:
                    moment = moments.get(value)
                    if moment is None:
                        moment = moments[value] = utc_datetime(value)
                    row[index] = moment
            continue
        for row in rows:
            value = row[index]
            if value is not None:
                row[index] = convert(value)
    return rows


@lru_cache(maxsize=256)
def _update_plan(
    table: Table, columns: tuple[str, ...], key: str, dialect: Dialect
) -> tuple[str, list[Any]]:
    """The UPDATE of ``columns`` by ``key`` and each bind processor, made once."""
    quote = dialect.identifier_preparer.quote
    assignments = ", ".join(f"{quote(name)} = ?" for name in columns)
    # Names come from the table's metadata, never from a request.
    sql = f"UPDATE {quote(table.name)} SET {assignments} WHERE {quote(key)} = ?"  # noqa: S608
    names = (*columns, key)
    return sql, [_processor(table.c[name], dialect) for name in names]


def _chunks(rows: Iterable[Sequence[Any]]) -> Iterable[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def update_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    key: str = "id",
    times: StoredTimes | None = None,
) -> None:
    """Set ``columns`` of each row found by ``key``: ``rows`` are tuples of the
    columns' values followed by the key's (on SQLite, UTC timestamps converted
    through ``times`` when given)."""
    found = await sqlite_driver(session)
    if found is None:
        connection = await session.connection()
        statement = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({name: bindparam(name) for name in columns})
        )
        for chunk in _chunks(rows):
            values = [
                {**dict(zip(columns, row[:-1], strict=True)), "_key": row[-1]} for row in chunk
            ]
            await connection.execute(statement, values)
        return
    driver, dialect = found
    sql, processors = _update_plan(table, tuple(columns), key, dialect)
    if times is None:
        converting = [(index, p) for index, p in enumerate(processors) if p]
    else:
        converting = _sharing(table, (*columns, key), processors, times)
    for chunk in _chunks(rows):
        await driver.executemany(sql, _converted(chunk, converting))
