"""One read in flight per key: shared while it runs, started anew after it or a forget."""

from __future__ import annotations

import asyncio

from tidings.core.single_flight import SingleFlight


class CountingRead:
    """A read that waits for its release and counts how often it was started."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.started += 1
        number = self.started
        await self.release.wait()
        return number


async def test_callers_during_a_read_share_it() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    read = CountingRead()
    callers = [asyncio.create_task(flight.run("a", read)) for _ in range(20)]
    await asyncio.sleep(0)
    read.release.set()
    assert await asyncio.gather(*callers) == [1] * 20
    assert read.started == 1


async def test_a_later_caller_and_another_key_read_again() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    read = CountingRead()
    read.release.set()
    assert await flight.run("a", read) == 1
    assert await flight.run("a", read) == 2
    assert await flight.run("b", read) == 3


async def test_forget_lets_the_next_caller_start_its_own_read() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    read = CountingRead()
    first = asyncio.create_task(flight.run("a", read))
    await asyncio.sleep(0)
    flight.forget("a")
    second = asyncio.create_task(flight.run("a", read))
    await asyncio.sleep(0)
    read.release.set()
    assert (await first, await second) == (1, 2)


async def test_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    read = CountingRead()
    leaving = asyncio.create_task(flight.run("a", read))
    staying = asyncio.create_task(flight.run("a", read))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    read.release.set()
    assert await staying == 1
    assert leaving.cancelled()
