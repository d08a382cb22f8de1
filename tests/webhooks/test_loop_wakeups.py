"""The webhook loops lose no wake-up: one that comes while a pass is running (new
events, deliveries written, or stop) is acted on at once, not a poll interval later.

The polls here are an hour long, so a lost wake-up shows as a test that times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.conftest import make_settings
from tests.support.databases import migrated_sqlite
from tidings.accounts.models import Account
from tidings.core.clock import SystemClock
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.group_commit import GroupCommitter
from tidings.messages.models import OutboxEvent
from tidings.settings import WebhookSettings
from tidings.webhooks import fanout as fanout_module
from tidings.webhooks.dispatcher import WebhookDispatcher
from tidings.webhooks.fanout import Fanout
from tidings.webhooks.repository import WebhookRepository

T = TypeVar("T")
HOUR = WebhookSettings(poll_interval_seconds=3600)
BOUND = 10


class GatedWriter:
    """A group committer whose units wait at a gate, so that a test can act while a
    loop's pass is in flight."""

    def __init__(self, writer: GroupCommitter) -> None:
        self._writer = writer
        self.entered: asyncio.Queue[None] = asyncio.Queue()
        self.gate = asyncio.Event()

    async def submit(self, unit: Callable[[AsyncSession], Awaitable[T]]) -> T:
        self.entered.put_nowait(None)
        await self.gate.wait()
        return await self._writer.submit(unit)

    async def in_a_pass(self) -> None:
        await asyncio.wait_for(self.entered.get(), BOUND)


def _migrated_sqlite(
    data_dir: Path,
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], GroupCommitter]:
    """A migrated SQLite file in ``data_dir``: its engine, sessions and a committer."""
    shutil.copyfile(migrated_sqlite(), data_dir / "tidings.db")
    url = f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}"
    engine = build_engine(make_settings(data_dir, (url, None)))
    sessions = build_sessionmaker(engine)
    return engine, sessions, GroupCommitter(sessions)


@pytest.fixture
async def writer(data_dir: Path) -> AsyncIterator[GatedWriter]:
    engine, _, committer = _migrated_sqlite(data_dir)
    try:
        yield GatedWriter(committer)
    finally:
        await committer.close()
        await engine.dispose()


def fanout(writer: GatedWriter) -> Fanout:
    return Fanout(writer=writer, clock=SystemClock(), settings=HOUR)  # type: ignore[arg-type]


def dispatcher(writer: GatedWriter) -> WebhookDispatcher:
    ring = KeyRing([("test", Fernet.generate_key())], legacy=None)
    return WebhookDispatcher(
        writer=writer,  # type: ignore[arg-type]
        clock=SystemClock(),
        settings=HOUR,
        secret_box=ring,
    )


@pytest.mark.parametrize("make", [fanout, dispatcher], ids=["fanout", "dispatcher"])
async def test_a_wake_up_during_a_pass_starts_another(
    writer: GatedWriter, make: Callable[[GatedWriter], Any]
) -> None:
    loop = make(writer)
    running = asyncio.create_task(loop.run())
    try:
        await writer.in_a_pass()
        loop.wake()  # work committed while the pass runs
        writer.gate.set()
        await writer.in_a_pass()
    finally:
        await loop.stop()
        await asyncio.wait_for(running, BOUND)


@pytest.mark.parametrize("make", [fanout, dispatcher], ids=["fanout", "dispatcher"])
async def test_stop_during_a_pass_ends_the_loop(
    writer: GatedWriter, make: Callable[[GatedWriter], Any]
) -> None:
    loop = make(writer)
    running = asyncio.create_task(loop.run())
    await writer.in_a_pass()
    await loop.stop()
    writer.gate.set()
    await asyncio.wait_for(running, BOUND)


async def test_the_fanout_takes_no_writer_turn_when_no_event_waits(data_dir: Path) -> None:
    """Every send wakes the fan-out; with no event written (no endpoint wants one)
    it looks in a read and leaves the writer (whose lock every process waits for)
    alone. An event committed since makes it take its turn and fan it out."""
    engine, sessions, committer = _migrated_sqlite(data_dir)
    passes: list[object] = []

    class CountingWriter:
        async def submit(self, unit: Callable[[AsyncSession], Awaitable[T]]) -> T:
            passes.append(unit)
            return await committer.submit(unit)

    loop = Fanout(
        writer=CountingWriter(),  # type: ignore[arg-type]
        clock=SystemClock(),
        settings=HOUR,
        sessions=sessions,
    )
    running = asyncio.create_task(loop.run())
    try:
        for _ in range(5):
            loop.wake()
            await asyncio.sleep(0.01)
        assert passes == []

        async def add_event(session: AsyncSession) -> None:
            session.add(Account(id="acc_none", name="None", created_at=datetime.now(UTC)))
            await session.flush()
            session.add(
                OutboxEvent(
                    id=new_id("evt"),
                    account_id="acc_none",
                    environment="production",
                    type="message.queued",
                    subject_id="msg_none",
                    payload={},
                    created_at=datetime.now(UTC),
                )
            )

        await committer.submit(add_event)
        loop.wake()

        async def fanned() -> bool:
            async with sessions() as session:
                return not await WebhookRepository(session).any_unfanned(None)

        for _ in range(BOUND * 100):
            if passes and await fanned():
                break
            await asyncio.sleep(0.01)
        assert len(passes) == 1
        assert await fanned()
    finally:
        await loop.stop()
        await asyncio.wait_for(running, BOUND)
        await committer.close()
        await engine.dispose()


async def test_wake_ups_close_together_share_one_look(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each send wakes the fan-out; wake-ups within the look interval of the last look
    wait for the next one instead of each reading the outbox. (The interval is made
    an hour here, so nothing depends on how fast this machine is.)"""
    monkeypatch.setattr(fanout_module, "LOOK_INTERVAL_SECONDS", 3600.0)
    engine, sessions, committer = _migrated_sqlite(data_dir)
    looks: list[None] = []

    def counting_sessions() -> AsyncSession:
        looks.append(None)
        return sessions()

    loop = Fanout(
        writer=committer,
        clock=SystemClock(),
        settings=HOUR,
        sessions=counting_sessions,  # type: ignore[arg-type]
    )
    running = asyncio.create_task(loop.run())
    try:
        for _ in range(BOUND * 100):
            if looks:
                break
            await asyncio.sleep(0.01)
        assert looks == [None]  # the first look, at start
        for _ in range(5):
            loop.wake()
            await asyncio.sleep(0.01)
        assert looks == [None]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await committer.close()
        await engine.dispose()
