"""A session on demand is made at its first use, and closed (its connection given
back) at the end of the block only if it was made."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tidings.db.on_demand import session_on_demand


async def test_made_at_first_use_and_closed_after(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    sessions = async_sessionmaker(engine)
    try:
        async with session_on_demand(sessions) as session:
            pass
        assert session.made is None  # type: ignore[attr-defined]

        async with session_on_demand(sessions) as session:
            assert await session.scalar(text("SELECT 41 + 1")) == 42
            made = session.made  # type: ignore[attr-defined]
            assert made is not None
            assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
