"""SQLite's log is folded into the database by the engine's checkpoint thread, not by
a commit on the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from tidings.db.engine import build_engine
from tidings.settings import Settings


async def test_the_log_is_checkpointed_by_the_thread_not_by_commits(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    engine = build_engine(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{path}"))
    try:
        async with engine.begin() as connection:
            autocheckpoint = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
            await connection.execute(text("CREATE TABLE blobs (data BLOB)"))
            # 1 MB: below SQLite's own threshold (1,000 pages), so only our thread
            # folds it into the database file.
            await connection.execute(
                text("INSERT INTO blobs VALUES (:data)"), {"data": b"x" * 1_000_000}
            )
        assert autocheckpoint == 0
        for _ in range(100):
            if path.stat().st_size >= 1_000_000:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size >= 1_000_000
    finally:
        await engine.dispose()
