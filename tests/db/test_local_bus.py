"""The local bus between an API process and the delivery process on one SQLite file:
wake-ups one way, verdicts (with or without their answer) the other, a verdict
recorded before its ``wait`` arrived, and a reconnection that says ``wait`` again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tidings.db.local_bus import ApiEnd, DeliveryEnd, RelayedWaiters, bus_address
from tidings.messages.waiters import LOCAL_POLL_SECONDS, VerdictWaiters

# Bounds against a hang, not speed checks.
WAIT = 10.0


async def _until(check: object) -> None:
    async def poll() -> None:
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT)


def _address(tmp_path: Path) -> str:
    address = bus_address(f"sqlite+aiosqlite:///{tmp_path / 'tidings.db'}")
    assert address is not None
    return address


@contextlib.asynccontextmanager
async def _connected(
    tmp_path: Path, woken: list[str] | None = None
) -> AsyncIterator[tuple[RelayedWaiters, VerdictWaiters, ApiEnd]]:
    """A delivery end listening and an API end connected to it: the delivery side's
    waiters, the API side's, and the API end."""
    address = _address(tmp_path)
    delivery = DeliveryEnd(address)
    await delivery.listen((woken if woken is not None else []).append)
    waiters = VerdictWaiters()
    api = ApiEnd(address, waiters, poll_seconds=5.0)
    try:
        await api.start()
        assert api.connected.is_set()
        yield RelayedWaiters(delivery), waiters, api
    finally:
        await api.close()
        await delivery.close()


def test_only_a_sqlite_file_has_a_bus(tmp_path: Path) -> None:
    assert bus_address("postgresql+asyncpg://postgres@127.0.0.1/test") is None
    assert bus_address("sqlite+aiosqlite:///:memory:") is None
    one = bus_address(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    other = bus_address(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    assert one is not None and other is not None and one != other


async def test_a_wait_is_answered_with_the_verdict(tmp_path: Path) -> None:
    woken: list[str] = []
    async with _connected(tmp_path, woken) as (relayed, waiters, api):
        # Connected: the requests rely on the push, and read for themselves rarely.
        assert waiters.poll_seconds == 5.0
        # Whatever was committed while nobody listened is looked at.
        await _until(lambda: {"messages", "reports", "webhooks"} <= set(woken))
        woken.clear()

        answered = waiters.register("msg_1")
        api.notify("messages")
        plain = waiters.register("msg_2")
        api.notify("messages")
        # A burst of wake-ups in one turn of the loop: one line.
        await _until(lambda: woken == ["messages"])
        # The wait was told before the wake-up, on the same connection.
        assert relayed.waiting("msg_1") and relayed.waiting("msg_2")
        assert not relayed.waiting("msg_3")

        relayed.resolve("msg_1", {"id": "msg_1", "status": "sent"})
        relayed.resolve("msg_2")
        assert await asyncio.wait_for(answered, WAIT) == {"id": "msg_1", "status": "sent"}
        # No answer along: the request reads its message back itself.
        assert await asyncio.wait_for(plain, WAIT) is None
        assert not relayed.waiting("msg_1")


async def test_a_verdict_recorded_before_its_wait_arrived_is_still_told(
    tmp_path: Path,
) -> None:
    async with _connected(tmp_path) as (relayed, waiters, _api):
        # The delivery process claimed it by its own poll and settled it first.
        relayed.resolve("msg_early", {"id": "msg_early", "status": "sent"})
        early = waiters.register("msg_early")
        assert await asyncio.wait_for(early, WAIT) is None


async def test_after_the_delivery_process_restarts_the_waits_are_told_again(
    tmp_path: Path,
) -> None:
    address = _address(tmp_path)
    first = DeliveryEnd(address)
    await first.listen(lambda _topic: None)
    waiters = VerdictWaiters()
    api = ApiEnd(address, waiters, poll_seconds=5.0)
    try:
        await api.start()
        waiting = waiters.register("msg_kept")
        await _until(lambda: first.waiting("msg_kept"))
        await first.close()
        # Nothing pushed while it is away: the requests read as often as alone.
        await _until(lambda: not api.connected.is_set())
        assert waiters.poll_seconds == LOCAL_POLL_SECONDS
        assert not waiting.done()

        second = DeliveryEnd(address)
        await second.listen(lambda _topic: None)
        try:
            await _until(lambda: second.waiting("msg_kept"))
            assert api.connections == 2
            assert waiters.poll_seconds == 5.0
            RelayedWaiters(second).resolve("msg_kept", {"id": "msg_kept", "status": "failed"})
            assert await asyncio.wait_for(waiting, WAIT) == {
                "id": "msg_kept",
                "status": "failed",
            }
        finally:
            await second.close()
    finally:
        await api.close()


async def test_a_closed_connection_leaves_no_waits_behind(tmp_path: Path) -> None:
    async with _connected(tmp_path) as (relayed, waiters, api):
        waiters.register("msg_gone")
        await _until(lambda: relayed.waiting("msg_gone"))
        await api.close()
        await _until(lambda: not relayed.waiting("msg_gone"))


async def test_a_request_that_stops_waiting_is_forgotten(tmp_path: Path) -> None:
    async with _connected(tmp_path) as (relayed, waiters, _api):
        first = waiters.register("msg_slow")
        second = waiters.register("msg_slow")
        await _until(lambda: relayed.waiting("msg_slow"))
        waiters.discard("msg_slow", first)
        # Lines arrive in order: once a later wait is heard, so was anything before it.
        waiters.register("msg_marker")
        await _until(lambda: relayed.waiting("msg_marker"))
        # Another request here still waits for it.
        assert relayed.waiting("msg_slow")
        waiters.discard("msg_slow", second)
        await _until(lambda: not relayed.waiting("msg_slow"))
