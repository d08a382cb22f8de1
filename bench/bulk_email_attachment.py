"""A bulk email with an attachment, and the event loop while a bulk is accepted:
one request of N recipients (100,000 by default) with a 1 MB attachment.

    .venv/bin/python bench/bulk_email_attachment.py [recipients] [--sms]

Prints what accepting the request costs: the database's growth (the SQLite file,
its WAL and shared memory), the process's peak memory above idle (resident set,
sampled every 5 ms), the time to the 202 answer, and the event loop's longest
stall while the request was served, seen by a ticker task in this (the server's)
process (also counting only the time the process was on a CPU, for a machine
shared with other busy processes, and only the loop's own thread's CPU time, which
tells the loop running from the loop waiting for the GIL or a CPU) and as
``/healthz`` latency polled meanwhile.
The baselines come from the same run: the request's own size for the database's
growth, and the longest stall of the same ticker over an idle stretch before the
request. ``--sms`` also
measures a plain SMS bulk of as many recipients (review E8's probe).

Delivery is off (``dispatch=False``): the figures are the acceptance's. Tidings
runs in this process on a fresh SQLite file with the default driver, as
``tidings serve`` runs it; the requests go through the ASGI app.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tidings.accounts import service
from tidings.accounts.repository import AccountRepository
from tidings.app import create_app
from tidings.core.clock import SystemClock
from tidings.core.key_ring import new_key_entry
from tidings.db import migrate
from tidings.settings import Settings

PASSWORD = "bench password 1234"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRss:
    """The highest resident set seen while running, sampled by a thread."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Stalls:
    ticker: float = 0.0
    # The longest stall counting only the time this process was on a CPU: on a
    # machine shared with other busy processes, a process waiting for a CPU is
    # not its own event loop blocking.
    on_cpu: float = 0.0
    # The same, counting only the event loop's own thread's CPU time: what the loop
    # itself ran, as against waiting for a CPU or for the GIL held by a worker thread.
    loop_cpu: float = 0.0
    healthz: float = 0.0


async def watching(
    client: httpx.AsyncClient, work: Callable[[], Awaitable[Any]]
) -> tuple[Any, Stalls]:
    """Run ``work`` while a ticker (10 ms sleeps) and a /healthz poller measure how
    long the loop keeps them waiting."""
    stalls = Stalls()
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
            await asyncio.sleep(0.01)
            late = time.perf_counter() - started - 0.01
            stalls.ticker = max(stalls.ticker, late)
            stalls.on_cpu = max(stalls.on_cpu, min(late, time.process_time() - cpu))
            stalls.loop_cpu = max(stalls.loop_cpu, min(late, time.thread_time() - own))

    async def poller() -> None:
        while not done.is_set():
            started = time.perf_counter()
            answer = await client.get("/healthz")
            assert answer.status_code == 200, answer.text
            stalls.healthz = max(stalls.healthz, time.perf_counter() - started)
            await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(poller())]
    try:
        result = await work()
    finally:
        done.set()
        await asyncio.gather(*tasks)
    return result, stalls


def database_bytes(data: Path) -> int:
    return sum(path.stat().st_size for path in data.glob("tidings.db*"))


async def main(count: int, sms: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="tidings-bench-email-"))
    settings = Settings(
        data_dir=data,
        sqlite_synchronous="NORMAL",
        dispatch=False,
        secrets_keys=new_key_entry("bench"),
    )
    app = create_app(settings)
    ctx = app.state.ctx
    await migrate.upgrade(ctx.engine)
    async with ctx.sessions() as session:
        repo = AccountRepository(session)
        account = await service.create_account(repo, SystemClock(), "Bench")
        await session.commit()
        await service.create_user(
            repo, SystemClock(), account=account.id, username="bench", password=PASSWORD
        )
        await session.commit()
    attachment = base64.b64encode(os.urandom(1_000_000)).decode()
    # Encoded up front: the client's own work is not the server's.
    email_body = json.dumps(
        {
            "from": "News <news@example.com>",
            "subject": "{{name}}, our news",
            "text": "Hello, here is this month's report.",
            "html": "<p>Hello, here is <a href='https://example.com/r'>the report</a>.</p>",
            "attachments": [
                {"filename": "report.pdf", "contentType": "application/pdf", "content": attachment}
            ],
            "recipients": [
                {"to": f"reader{index}@example.com", "variables": {"name": f"R{index}"}}
                for index in range(count)
            ],
        }
    ).encode()
    sms_body = json.dumps(
        {
            "body": "Hi {{name}}, your table is ready.",
            "recipients": [
                {"to": f"+3933{index:08d}", "variables": {"name": f"friend {index}"}}
                for index in range(count)
            ],
        }
    ).encode()
    del attachment
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
    ):
        login = await client.post(
            "/sandbox/api/v4/auth/token", json={"username": "bench", "password": PASSWORD}
        )
        headers = {
            "Authorization": f"Bearer {login.json()['token']}",
            "Content-Type": "application/json",
        }
        _, idle = await watching(client, lambda: asyncio.sleep(2.0))

        async def post(path: str, body: bytes) -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            answer = await client.post(path, content=body, headers=headers)
            return answer, time.perf_counter() - started

        async with ctx.engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = database_bytes(data)
        idle_rss = rss_bytes()
        with PeakRss() as rss:
            (answer, took), stalls = await watching(
                client, lambda: post("/sandbox/api/v4/email/bulk", email_body)
            )
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == count, answer.json()
        grown = database_bytes(data) - before
        print(f"email bulk            {count} recipients, 1 MB attachment")
        print(f"request body          {len(email_body) / 1e6:.1f} MB")
        print(f"answer (202)          {took:.2f} s")
        print(
            f"database growth       {grown / 1e6:.1f} MB   "
            f"(ratio to the request body: {grown / len(email_body):.2f}; "
            f"one copy per recipient would be {count * 1.333:.0f} MB)"
        )
        print(f"peak memory above idle {(rss.peak - idle_rss) / 2**20:.0f} MiB (RSS)")
        report("email", stalls, idle)
        if sms:
            (answer, took), stalls = await watching(
                client, lambda: post("/sandbox/api/v4/sms/bulk", sms_body)
            )
            assert answer.status_code == 202, answer.text
            print(f"sms bulk              {count} recipients, answer in {took:.2f} s")
            report("sms", stalls, idle)


def report(name: str, stalls: Stalls, idle: Stalls) -> None:
    print(
        f"{name} longest stall    ticker {stalls.ticker * 1000:.0f} ms "
        f"({stalls.on_cpu * 1000:.0f} ms of it on a CPU, "
        f"{stalls.loop_cpu * 1000:.0f} ms on the loop's thread), "
        f"/healthz {stalls.healthz * 1000:.0f} ms   (goal: under 100 ms)"
    )
    print(
        f"  baseline idle       ticker {idle.ticker * 1000:.1f} ms "
        f"({idle.on_cpu * 1000:.1f} ms on a CPU), /healthz {idle.healthz * 1000:.1f} ms; "
        f"ratio ticker {stalls.ticker / max(idle.ticker, 1e-4):.0f}x, "
        f"/healthz {stalls.healthz / max(idle.healthz, 1e-4):.0f}x   "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 100_000, "--sms" in sys.argv))
