"""Databases for the tests: a migrated SQLite file copied per test, and PostgreSQL
(reachability, a throwaway schema per test).

Migrating costs a few hundred milliseconds, paid once per test run: the first test
that needs a new SQLite database migrates one in a directory of its own, and every
test after it gets a byte copy of that file.

Tests that need PostgreSQL are skipped with a message saying how to enable them
when the server is not reachable, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import pytest
from fastapi import FastAPI

from tidings.db import migrate
from tidings.db.engine import build_engine
from tidings.settings import Settings

T = TypeVar("T")
POSTGRES_DSN = os.environ.get(
    "TIDINGS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_available: bool | None = None


def postgres_available() -> bool:
    global _available
    if _available is None:

        async def probe() -> bool:
            try:
                connection = await asyncpg.connect(POSTGRES_DSN, timeout=3)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await connection.close()
            return True

        _available = asyncio.run(probe()) if not _loop_running() else True
    return _available


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def require_or_skip(available: bool, what: str) -> None:
    if available:
        return
    hint = {
        "PostgreSQL": (
            f"start PostgreSQL and point TIDINGS_TEST_POSTGRES_DSN at it (now {POSTGRES_DSN})"
        ),
        "Chromium": "install Chromium (Debian: apt-get install -y chromium) at /usr/bin/chromium",
    }[what]
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {hint}")
    pytest.skip(f"{what} is not available: {hint}")


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


class PostgresSchema:
    """A fresh schema in the test database, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"t_{secrets.token_hex(6)}"

    @property
    def url(self) -> str:
        return POSTGRES_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def _execute(self, statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def __enter__(self) -> PostgresSchema:
        _run(self._execute(f'CREATE SCHEMA "{self.name}"'))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _run(self._execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))


@functools.cache
def migrated_sqlite() -> Path:
    """A SQLite database migrated to head, made once per test process."""
    directory = Path(tempfile.mkdtemp(prefix="tidings-migrated-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "tidings.db"
    settings = Settings(data_dir=directory, database_url=f"sqlite+aiosqlite:///{path}")

    async def upgrade() -> None:
        engine = build_engine(settings)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    run_in_own_loop(upgrade)
    # The database runs in WAL mode: fold the log into the main file so that the
    # file alone is the whole database.
    with sqlite3.connect(path) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    connection.close()
    wal = path.with_name(path.name + "-wal")
    if busy or (wal.exists() and wal.stat().st_size):
        raise RuntimeError(f"the migrated database's log could not be checkpointed ({path})")
    return path


def run_in_own_loop(coroutine_function: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end in a thread with an event loop of its own, so that
    a caller inside a running loop (an async test) can use it too."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(coroutine_function()))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


async def migrate_to_head(app: FastAPI) -> None:
    """Bring an application's database to head before its first use.

    A SQLite file that does not exist yet becomes a copy of the migrated one; any
    other database (an existing file, PostgreSQL) runs the migrations.
    """
    settings: Settings = app.state.ctx.settings
    path = _sqlite_path(settings)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite(), path)
        return
    await migrate.upgrade(app.state.ctx.engine)


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.effective_database_url
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url == prefix + ":memory:":
        return None
    return Path(url.removeprefix(prefix))
