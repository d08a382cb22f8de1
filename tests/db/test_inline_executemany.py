"""The inline driver runs an ``executemany`` of many rows (a bulk request's slice) in
its commit thread, and a few rows on the event loop's thread; both insert them all."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from tidings.db.engine import build_engine
from tidings.db.inline_sqlite import LARGE_EXECUTEMANY
from tidings.settings import Settings


async def test_many_rows_go_to_the_commit_thread_and_few_stay(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    engine = build_engine(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{path}"))
    inserts: list[str] = []
    try:
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            sqlite_connection = raw._conn  # type: ignore[union-attr]

            def traced(statement: str) -> None:
                if statement.startswith("INSERT"):
                    inserts.append(threading.current_thread().name)

            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
            sqlite_connection.set_trace_callback(traced)
            many = [(f"row {n}",) for n in range(LARGE_EXECUTEMANY)]
            await connection.exec_driver_sql("INSERT INTO notes VALUES (?)", many)
            few = [("one",), ("two",)]
            await connection.exec_driver_sql("INSERT INTO notes VALUES (?)", few)
            sqlite_connection.set_trace_callback(None)
            await connection.commit()
            count = await connection.scalar(text("SELECT count(*) FROM notes"))
        assert count == LARGE_EXECUTEMANY + 2
        assert {name.split("_")[0] for name in inserts[:LARGE_EXECUTEMANY]} == {"sqlite-commit"}
        assert inserts[LARGE_EXECUTEMANY:] == [threading.main_thread().name] * 2
    finally:
        await engine.dispose()
