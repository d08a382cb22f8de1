"""Requests of one token share the read of its state while it runs; a revocation
in this process is not answered from a read that began before it."""

from __future__ import annotations

import asyncio

from tidings.auth.state_cache import TokenStateCache


async def test_concurrent_checks_share_one_read() -> None:
    cache = TokenStateCache()
    reads = 0
    release = asyncio.Event()

    async def read() -> tuple[bool, bool]:
        nonlocal reads
        reads += 1
        await release.wait()
        return (False, False)

    waiting = [asyncio.create_task(cache.read_once("tok_1", read)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [(False, False)] * 10
    assert reads == 1
    # Done: the next check reads again.
    assert await cache.read_once("tok_1", read) == (False, False)
    assert reads == 2


async def test_a_read_in_progress_is_not_shared_after_forget() -> None:
    cache = TokenStateCache()
    answers = iter([(False, False), (False, True)])
    release = asyncio.Event()

    async def read() -> tuple[bool, bool]:
        answer = next(answers)
        await release.wait()
        return answer

    before = asyncio.create_task(cache.read_once("tok_1", read))
    await asyncio.sleep(0)
    cache.forget("tok_1")
    after = asyncio.create_task(cache.read_once("tok_1", read))
    await asyncio.sleep(0)
    release.set()
    assert await before == (False, False)
    assert await after == (False, True)
