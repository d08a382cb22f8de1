"""The database engine and session factory, for SQLite (embedded) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so that the API and the dispatcher
can share one file; foreign keys are switched on, as PostgreSQL always has them.
Its checkpoints run in a thread of their own (:mod:`tidings.db.checkpoint`), not in
whichever commit on the event loop happens to fill the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tidings.db import inline_sqlite
from tidings.db.checkpoint import Checkpointer
from tidings.settings import Settings


def _sqlite_pragmas(synchronous: str, busy_timeout_ms: int, checkpoint_elsewhere: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if checkpoint_elsewhere:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    return on_connect


INLINE_BUSY_TIMEOUT_MS = 100


def build_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    url = make_url(settings.effective_database_url)
    options: dict[str, Any] = {"pool_pre_ping": False}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.sqlite_driver == "inline":
            options["module"] = inline_sqlite.dbapi()
            options["connect_args"] = {"timeout": INLINE_BUSY_TIMEOUT_MS / 1000}
        else:
            options["connect_args"] = {"timeout": 30}
        if url.database and url.database != ":memory:":
            # Readers run beside the one writer (WAL). Under load each request holds a
            # connection while it reads: a pool that keeps 64 does not open and close
            # overflow connections (each with its pragmas) request after request.
            options.update(pool_size=64, max_overflow=64, pool_timeout=60)
    else:
        options.update(pool_size=10, max_overflow=10)
        if settings.database_schema:
            options["connect_args"] = {"server_settings": {"search_path": settings.database_schema}}
    options.update(overrides)
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        # The inline driver waits for a lock on the event loop's thread, so it waits
        # briefly and lets the group committer retry without blocking the loop.
        busy = INLINE_BUSY_TIMEOUT_MS if settings.sqlite_driver == "inline" else 30_000
        on_file = bool(url.database) and url.database != ":memory:"
        event.listen(
            engine.sync_engine,
            "connect",
            _sqlite_pragmas(settings.sqlite_synchronous, busy, checkpoint_elsewhere=on_file),
        )
        if on_file:
            checkpointer = Checkpointer(Path(str(url.database)))
            checkpointer.start()
            event.listen(engine.sync_engine, "engine_disposed", lambda _: checkpointer.stop())
    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
