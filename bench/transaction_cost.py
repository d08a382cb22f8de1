"""CPU time of one small write transaction, by the way it reaches SQLite.

Each single send is written in a few group-commit transactions (the message, the
verdict, the receipt's), and a transaction has a fixed cost besides its statements:
the session, the pool's checkout and return, SQLAlchemy Core's execution and commit,
the commit's hand-off to the driver's commit thread. A batch of many sends shares it;
at one to sixteen clients the batches are small and each send pays most of it. This
runs ``--transactions`` one-row inserts, each its own transaction, on a SQLite file
with ``synchronous=FULL`` (the default), in each of these ways, and prints the CPU
and wall time per transaction and the ratio to ``sqlite3`` itself (the baseline,
measured in the same run):

- an ORM session per transaction from a session maker, as the group committer does;
- an ORM session per transaction, bound to one connection held throughout;
- a Core connection from the pool per transaction;
- one Core connection held throughout;
- ``sqlite3`` with the commit in a thread, as the inline driver commits;
- ``sqlite3`` with the commit on the calling thread (the baseline).

    .venv/bin/python bench/transaction_cost.py [--transactions 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tidings.db import inline_sqlite

INSERT = "INSERT INTO t (v) VALUES ('x')"
WARMUP = 200


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


async def measure(transaction: Callable[[], Awaitable[None]], count: int) -> tuple[float, float]:
    """CPU and wall microseconds per transaction."""
    for _ in range(WARMUP):
        await transaction()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await transaction()
    return (
        1e6 * (time.process_time() - cpu) / count,
        1e6 * (time.perf_counter() - wall) / count,
    )


async def main_async(count: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tidings-bench-tx-"))
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{folder / 'tx.db'}",
        module=inline_sqlite.dbapi(),
        connect_args={"timeout": 0.1},
        pool_size=64,
        max_overflow=64,
    )
    event.listen(engine.sync_engine, "connect", _pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    statement = text(INSERT)
    held = await engine.connect()
    raw = sqlite3.connect(folder / "tx.db", isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA synchronous=FULL")
    commits = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    async def orm_session() -> None:
        async with sessions() as session:
            await session.execute(statement)
            await session.commit()

    async def orm_session_held() -> None:
        async with AsyncSession(bind=held, expire_on_commit=False, autoflush=False) as session:
            await session.execute(statement)
            await session.commit()

    async def core_pooled() -> None:
        async with engine.connect() as connection:
            await connection.execute(statement)
            await connection.commit()

    async def core_held() -> None:
        await held.execute(statement)
        await held.commit()

    async def sqlite_commit_thread() -> None:
        raw.execute("BEGIN")
        raw.execute(INSERT)
        await loop.run_in_executor(commits, raw.execute, "COMMIT")

    async def sqlite_inline() -> None:
        raw.execute("BEGIN")
        raw.execute(INSERT)
        raw.execute("COMMIT")

    ways = [
        ("ORM session per transaction", orm_session),
        ("ORM session, held connection", orm_session_held),
        ("Core, pooled connection", core_pooled),
        ("Core, held connection", core_held),
        ("sqlite3, commit in a thread", sqlite_commit_thread),
        ("sqlite3 (baseline)", sqlite_inline),
    ]
    print(f"{'way':>30} {'cpu us':>8} {'wall us':>8} {'cpu ratio':>9}")
    try:
        for _ in range(rounds):
            results = [(name, await measure(way, count)) for name, way in ways]
            baseline = results[-1][1][0]
            for name, (cpu, wall) in results:
                print(f"{name:>30} {cpu:>8.1f} {wall:>8.1f} {cpu / baseline:>9.2f}")
    finally:
        await held.close()
        await engine.dispose()
        raw.close()
        commits.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    uvloop.run(main_async(options.transactions, options.rounds))


if __name__ == "__main__":
    main()
