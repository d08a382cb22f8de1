"""The cross-process writer lock: one holder at a time, waited for without blocking
the event loop, and given back when a waiter is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tidings.db.writer_lock import WriterLock, writer_lock_for


async def test_a_second_holder_waits_while_the_loop_goes_on(tmp_path: Path) -> None:
    # Two descriptors of one file conflict as two processes' would.
    first, second = WriterLock(tmp_path / "db.writer-lock"), WriterLock(tmp_path / "db.writer-lock")
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.005)
        ticks += 1
    # The loop ran meanwhile, and the second is still waiting.
    assert ticks == 20 and not waiting.done()
    first.release()
    await asyncio.wait_for(waiting, 5)
    # Now the first waits in its turn.
    again = asyncio.create_task(first.acquire())
    await asyncio.sleep(0.05)
    assert not again.done()
    second.release()
    await asyncio.wait_for(again, 5)
    first.release()
    first.close()
    second.close()


async def test_a_cancelled_waiter_gives_the_lock_back(tmp_path: Path) -> None:
    first, second, third = (WriterLock(tmp_path / "db.writer-lock") for _ in range(3))
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.05)
    waiting.cancel()
    first.release()
    # The cancelled waiter's thread took the lock once free, and gave it back.
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(third.acquire(), 5)
    third.release()
    for lock in (first, second, third):
        lock.close()


def test_only_sqlite_files_have_one(tmp_path: Path) -> None:
    lock = writer_lock_for(f"sqlite+aiosqlite:///{tmp_path / 'tidings.db'}")
    assert lock is not None and lock._path == tmp_path / "tidings.db.writer-lock"
    assert writer_lock_for("sqlite+aiosqlite:///:memory:") is None
    assert writer_lock_for("postgresql+asyncpg://postgres@127.0.0.1/test") is None
