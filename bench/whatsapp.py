"""Sends per second through the ``whatsapp_cloud`` provider to the Graph fake, against
a plain httpx loop posting the same bodies to the same fake, in the same run.

    .venv/bin/python bench/whatsapp.py [--messages 3000] [--concurrency 32]

Both sides keep ``concurrency`` requests in flight on pooled keep-alive connections;
the fake (tests/fakes/graph_api.py, throttles off, no webhooks) runs in a thread of
its own on 127.0.0.1. The provider's side includes building the Graph JSON from a
stored message, the error mapping and ``Accepted``; the plain loop only posts. Goal:
the provider at least 0.7 of the plain loop. Loopback only, bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.graph_api import GraphApi
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.providers.base import OutboundMessage, ProviderDeps
from tidings.providers.registry import ProviderIdentity, parse_config
from tidings.providers.whatsapp_cloud import WHATSAPP_CLOUD
from tidings.providers.whatsapp_cloud.provider import graph_message


def start_fake() -> tuple[GraphApi, asyncio.AbstractEventLoop]:
    fake = GraphApi(
        messages_per_second=1e9, pair_burst=10**9, enforce_window=False, default_script=()
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return fake, loop


def message(index: int) -> OutboundMessage:
    return OutboundMessage(
        id=f"msg_{index:08d}",
        account_id="acc_bench",
        environment=Environment.PRODUCTION,
        channel="whatsapp",
        to=f"+3933300{index % 10000:05d}",
        sender=None,
        body=f"Hello number {index}!",
        content={"previewUrl": False},
        attempt=1,
    )


async def in_flight(count: int, concurrency: int, one: Any) -> float:
    """Seconds to run ``one(index)`` for every index, ``concurrency`` at a time."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            await one(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def bench(count: int, concurrency: int, rounds: int) -> None:
    fake, loop = start_fake()
    deps = ProviderDeps(clock=SystemClock(), writer=None, inbox=None)  # type: ignore[arg-type]
    config = parse_config(WHATSAPP_CLOUD, fake.provider_config())
    identity = ProviderIdentity(
        "prv_bench", "acc_bench", Environment.PRODUCTION, "whatsapp", "whatsapp_cloud", "bench"
    )
    provider = WHATSAPP_CLOUD.build(identity, config, deps)
    url = f"{fake.base_url}/{fake.version}/{fake.phone_number_id}/messages"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    plain = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {fake.access_token}"}, limits=limits
    )
    bodies = [graph_message(message(i))[0] for i in range(count)]

    async def through_provider(index: int) -> None:
        await provider.send(message(index))

    async def plain_loop(index: int) -> None:
        answer = await plain.post(url, json=bodies[index])
        answer.raise_for_status()
        answer.json()["messages"][0]["id"]

    # Warm both pools.
    await in_flight(concurrency * 2, concurrency, through_provider)
    await in_flight(concurrency * 2, concurrency, plain_loop)
    results: dict[str, list[float]] = {"provider": [], "plain": []}
    for _ in range(rounds):
        results["plain"].append(count / await in_flight(count, concurrency, plain_loop))
        results["provider"].append(count / await in_flight(count, concurrency, through_provider))
    await provider.close()
    await plain.aclose()
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    best = {name: max(values) for name, values in results.items()}
    print(f"messages per round: {count}, in flight: {concurrency}, rounds: {rounds}")
    for name in ("plain", "provider"):
        shown = ", ".join(f"{value:.0f}" for value in results[name])
        print(f"{name:>8}: best {best[name]:.0f}/s  (rounds: {shown})")
    print(f"   ratio: {best['provider'] / best['plain']:.2f} (goal >= 0.70)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(bench(min(options.messages, 20_000), options.concurrency, options.rounds))


if __name__ == "__main__":
    main()
