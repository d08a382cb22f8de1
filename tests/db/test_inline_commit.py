"""The inline driver syncs a write's commit in its commit thread, not on the event
loop's; a read-only session's commit costs nothing; the committed rows are there."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from tidings.db.engine import build_engine
from tidings.db.inline_sqlite import after_commit
from tidings.settings import Settings


async def test_a_write_commits_in_the_commit_thread(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    engine = build_engine(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{path}"))
    commits: list[str] = []
    try:
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            sqlite_connection = raw._conn  # type: ignore[union-attr]

            def traced(statement: str) -> None:
                if statement.strip().upper() == "COMMIT":
                    commits.append(threading.current_thread().name)

            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
            await connection.commit()
            sqlite_connection.set_trace_callback(traced)
            await connection.execute(text("INSERT INTO notes VALUES ('kept')"))
            await connection.commit()
            # Nothing written: no COMMIT is sent at all.
            await connection.execute(text("SELECT count(*) FROM notes"))
            await connection.commit()
            sqlite_connection.set_trace_callback(None)
        [committer] = commits
        assert committer.startswith("sqlite-commit")
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    finally:
        await engine.dispose()


async def test_what_follows_a_commit_runs_in_the_commit_thread_once_it_is_durable(
    tmp_path: Path,
) -> None:
    """The group committer lets the writer lock go there, before the loop resumes it."""
    path = tmp_path / "tidings.db"
    engine = build_engine(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{path}"))
    seen: list[tuple[str, list[tuple[str]]]] = []

    def then() -> None:
        with sqlite3.connect(path) as other:
            rows = other.execute("SELECT body FROM notes").fetchall()
        seen.append((threading.current_thread().name, rows))

    try:
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
            await connection.commit()
            await connection.execute(text("INSERT INTO notes VALUES ('kept')"))
            token = after_commit.set(then)
            try:
                await connection.commit()
            finally:
                after_commit.reset(token)
            # Not for later commits.
            await connection.execute(text("INSERT INTO notes VALUES ('later')"))
            await connection.commit()
        [(thread, rows)] = seen
        assert thread.startswith("sqlite-commit")
        assert rows == [("kept",)]
    finally:
        await engine.dispose()
