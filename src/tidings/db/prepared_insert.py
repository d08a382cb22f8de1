"""Rows made ready for an INSERT before the transaction that inserts them.

A single send's write runs inside the group committer's transaction, while this
process holds SQLite's writer lock; with ``serve --workers N`` or
``--delivery-process`` every other process's writes wait for it meanwhile. Binding a
row's values (timestamps as SQLite's text, JSON serialised, booleans as integers)
does not depend on anything stored, so it is done before, in the request's own
task (:func:`prepare_insert`), and the transaction only hands the bound rows to the
driver (:func:`insert_prepared`): the same statement and values as
:func:`tidings.db.multirow.insert_rows` would bind.

On PostgreSQL (or should the session's dialect not be the one the rows were bound
for) the rows go through :func:`~tidings.db.multirow.insert_rows` as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.driver import sqlite_driver
from tidings.db.multirow import bound_insert, insert_rows


@dataclass(frozen=True, slots=True)
class Bound:
    """The rows as SQLite's driver takes them, for one dialect's statement."""

    dialect: Dialect
    sql: str
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class PreparedInsert:
    table: Table
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    bound: Bound | None


def prepare_insert(
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    dialect: Dialect | None,
) -> PreparedInsert:
    """``rows`` (tuples in the order of ``columns``) for an INSERT into ``table``,
    bound for ``dialect`` when it is SQLite's."""
    if dialect is None or dialect.name != "sqlite":
        return PreparedInsert(table, columns, rows, None)
    sql, bound = bound_insert(table, columns, rows, dialect)
    return PreparedInsert(table, columns, rows, Bound(dialect, sql, bound))


async def insert_prepared(session: AsyncSession, prepared: PreparedInsert) -> None:
    """Insert the prepared rows in ``session``'s transaction."""
    bound = prepared.bound
    if bound is not None:
        found = await sqlite_driver(session)
        if found is not None and found[1] is bound.dialect:
            await found[0].executemany(bound.sql, bound.rows)
            return
    await insert_rows(session, prepared.table, prepared.columns, prepared.rows)
