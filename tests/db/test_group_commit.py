"""The group committer: many units in one transaction, failures isolated, lock waits
without blocking the loop (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.conftest import make_settings
from tidings.accounts.models import Account
from tidings.core.errors import PaymentRequired
from tidings.db import migrate
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.group_commit import GroupCommitter
from tidings.db.writer_lock import WriterLock


def _account(name: str) -> Account:
    return Account(id=f"acc_{name.upper():0>26}"[:30], name=name, created_at=datetime.now(UTC))


def _adding(name: str) -> Callable[[AsyncSession], Awaitable[str]]:
    """A unit that adds an account named ``name`` and answers with the name."""

    async def unit(session: AsyncSession) -> str:
        session.add(_account(name))
        return name

    return unit


async def _failing(session: AsyncSession) -> None:
    """A unit that writes an account, then refuses (its write is rolled back)."""
    session.add(_account("doomed"))
    await session.flush()
    raise PaymentRequired("not enough credits")


async def _migrated_writer(
    data_dir: Path, database_url: tuple[str, str | None]
) -> tuple[AsyncEngine, GroupCommitter]:
    engine = build_engine(make_settings(data_dir, database_url))
    await migrate.upgrade(engine)
    return engine, GroupCommitter(build_sessionmaker(engine))


async def test_units_share_a_transaction_and_failures_stay_apart(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    engine, writer = await _migrated_writer(data_dir, database_url)
    # Counted where the database sees them, not by the committer itself.
    commits: list[object] = []
    event.listen(engine.sync_engine, "commit", commits.append)
    try:
        results = await asyncio.gather(
            *(writer.submit(_adding(f"a{index}")) for index in range(20)),
            writer.submit(_failing),
            return_exceptions=True,
        )
        assert results[:20] == [f"a{index}" for index in range(20)]
        assert isinstance(results[20], PaymentRequired)
        async with build_sessionmaker(engine)() as session:
            names = set(await session.scalars(select(Account.name)))
        assert names == {f"a{index}" for index in range(20)}
        # The failed unit made its batch run again unit by unit: 20 commits, 1 failure.
        assert len(commits) == 20

        commits.clear()
        await asyncio.gather(*(writer.submit(_adding(f"b{index}")) for index in range(20)))
        assert 1 <= len(commits) < 20  # batched
    finally:
        await writer.close()
        await engine.dispose()


async def test_waits_for_another_process_lock_without_blocking(data_dir: Path) -> None:
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    engine = build_engine(make_settings(data_dir, database))
    await migrate.upgrade(engine)
    writer = GroupCommitter(build_sessionmaker(engine))
    # Another process holds SQLite's write lock for a moment.
    other = sqlite3.connect(data_dir / "tidings.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def add(session: AsyncSession) -> None:
        session.add(_account("late"))

    clock = asyncio.create_task(ticker())
    pending = asyncio.create_task(writer.submit(add))
    try:
        await asyncio.sleep(0.5)
        assert not pending.done()
        other.execute("COMMIT")
        await asyncio.wait_for(pending, 10)
        # The loop kept turning while the writer waited: each try blocks it for at
        # most the inline driver's short busy timeout, then the wait is asynchronous.
        assert ticks > 5
    finally:
        clock.cancel()
        other.close()
        await writer.close()
    async with build_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == 1
    await engine.dispose()


@pytest.mark.parametrize("driver", ["inline", "thread"])
async def test_both_sqlite_drivers_read_and_write(data_dir: Path, driver: str) -> None:
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    engine = build_engine(make_settings(data_dir, database, sqlite_driver=driver))
    await migrate.upgrade(engine)
    async with build_sessionmaker(engine)() as session:
        session.add(_account("one"))
        await session.commit()
        assert await session.scalar(select(Account.name)) == "one"
    await engine.dispose()


async def test_units_that_arrive_while_another_process_writes_share_one_commit(
    data_dir: Path,
) -> None:
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    engine = build_engine(make_settings(data_dir, database))
    await migrate.upgrade(engine)
    lock_path = data_dir / "tidings.db.writer-lock"
    writer = GroupCommitter(build_sessionmaker(engine), writer_lock=WriterLock(lock_path))
    commits: list[object] = []
    event.listen(engine.sync_engine, "commit", commits.append)
    # Another process's committer holds the writer lock.
    other = WriterLock(lock_path)
    await other.acquire()
    try:
        first = asyncio.ensure_future(writer.submit(_adding("early")))
        await asyncio.sleep(0.05)  # the committer is now waiting for the lock
        later = [asyncio.ensure_future(writer.submit(_adding(f"late{i}"))) for i in range(5)]
        await asyncio.sleep(0.05)
        assert not first.done() and commits == []
        other.release()
        assert await asyncio.gather(first, *later) == ["early", *(f"late{i}" for i in range(5))]
        # The units queued during the wait joined the waiting batch: one commit.
        assert len(commits) == 1
        async with build_sessionmaker(engine)() as session:
            count = await session.scalar(select(func.count()).select_from(Account))
        assert count == 6
    finally:
        other.close()
        await writer.close()
        await engine.dispose()


async def test_closing_waits_for_a_batch_that_waits_for_the_writer_lock(data_dir: Path) -> None:
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    engine = build_engine(make_settings(data_dir, database))
    await migrate.upgrade(engine)
    lock_path = data_dir / "tidings.db.writer-lock"
    writer = GroupCommitter(build_sessionmaker(engine), writer_lock=WriterLock(lock_path))
    other = WriterLock(lock_path)
    await other.acquire()
    try:

        async def unit(session: AsyncSession) -> str:
            session.add(_account("patient"))
            return "patient"

        submitted = asyncio.ensure_future(writer.submit(unit))
        await asyncio.sleep(0.05)  # its batch is taken, its committer waits for the lock
        closing = asyncio.ensure_future(writer.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
        other.release()
        await asyncio.wait_for(closing, 15)
        assert await asyncio.wait_for(submitted, 5) == "patient"
        async with build_sessionmaker(engine)() as session:
            assert await session.scalar(select(Account.name)) == "patient"
    finally:
        other.close()
        await engine.dispose()


async def test_on_sqlite_the_writer_keeps_one_connection(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    engine, writer = await _migrated_writer(data_dir, database_url)
    checkouts: list[object] = []
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: checkouts.append(1))
    try:
        for index in range(5):
            await writer.submit(_adding(f"c{index}"))
        # A unit that fails rolls its transaction back; the connection serves on.
        with pytest.raises(PaymentRequired):
            await writer.submit(_failing)
        await writer.submit(_adding("after"))
        if engine.dialect.name == "sqlite":
            # Taken from the pool once, not once per transaction.
            assert len(checkouts) == 1
        else:
            # A PostgreSQL connection can drop: each transaction takes one from the pool.
            assert len(checkouts) == 7
    finally:
        await writer.close()
    async with build_sessionmaker(engine)() as session:
        names = set(await session.scalars(select(Account.name)))
    assert names == {*(f"c{index}" for index in range(5)), "after"}
    await engine.dispose()


async def test_a_transaction_sees_no_objects_or_info_of_the_one_before(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    """On SQLite the writer's session is used again: what one transaction loaded, and
    what its units kept in ``info``, must not reach the next."""
    engine, writer = await _migrated_writer(data_dir, database_url)
    account = _account("before")
    try:
        await writer.submit(_adding("before"))

        async def load_and_keep(session: AsyncSession) -> tuple[str | None, bool]:
            kept = "mark" in session.info
            session.info["mark"] = True
            loaded = await session.get(Account, account.id)
            return (None if loaded is None else loaded.name), kept

        assert await writer.submit(load_and_keep) == ("before", False)
        # Changed by another connection between the writer's transactions.
        async with build_sessionmaker(engine)() as other:
            found = await other.get(Account, account.id)
            assert found is not None
            found.name = "after"
            await other.commit()
        # Read afresh, not the object the previous transaction loaded; no mark left.
        assert await writer.submit(load_and_keep) == ("after", False)
    finally:
        await writer.close()
        await engine.dispose()
