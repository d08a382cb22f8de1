"""The database engine and session factory, for SQLite (embedded) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so that the API and the dispatcher
can share one file; foreign keys are switched on, as PostgreSQL always has them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tidings.settings import Settings


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


def build_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    url = make_url(settings.effective_database_url)
    options: dict[str, Any] = {"pool_pre_ping": False}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
        # Readers run beside the one writer (WAL); let enough of them wait their turn.
        options.update(pool_size=10, max_overflow=30, pool_timeout=60)
    else:
        options.update(pool_size=10, max_overflow=10)
        if settings.database_schema:
            options["connect_args"] = {"server_settings": {"search_path": settings.database_schema}}
    options.update(overrides)
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_synchronous))
    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
