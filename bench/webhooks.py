"""Webhook delivery throughput: events delivered per second to a local receiver,
next to a plain loop of signed POSTs (httpx, same concurrency) to the same receiver.

    .venv/bin/python bench/webhooks.py [events]

The receiver runs in a child process (raw asyncio HTTP/1.1, answers 200). Tidings
runs in this process on a fresh SQLite file with its real runtime: the events are
written as outbox rows (distinct messages, so per-message ordering does not
serialise them), then fanned out, claimed, signed, POSTed and recorded.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.app import create_app
from tidings.core.ids import new_id
from tidings.core.key_ring import new_key_entry
from tidings.db import migrate
from tidings.messages.models import OutboxEvent
from tidings.settings import Settings
from tidings.webhooks import signing
from tidings.webhooks.models import WebhookDelivery
from tidings.webhooks.schemas import WebhookCreate
from tidings.webhooks.service import create

CONCURRENCY = 32


def _receiver(port: int) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = 0
                line = await reader.readline()
                if not line:
                    return
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def plain_loop(url: str, count: int, secret: str) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=15) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                body = signing.body_of("message.sent", datetime.now(UTC), {"id": f"msg_{index}"})
                event_id = new_id("evt")
                headers = signing.headers_for([secret], event_id, int(time.time()), body)
                answer = await client.post(url, content=body, headers=headers)
                assert answer.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


async def tidings_rate(url: str, count: int, data_dir: Path) -> float:
    settings = Settings(
        data_dir=data_dir,
        secrets_keys=new_key_entry("bench"),
        webhooks={"poll_interval_seconds": 0.05, "concurrency": CONCURRENCY},  # type: ignore[arg-type]
        delivery={"poll_interval_seconds": 0.2},  # type: ignore[arg-type]
    )
    app = create_app(settings)
    ctx = app.state.ctx
    await migrate.upgrade(ctx.engine)
    async with app.router.lifespan_context(app):
        from tidings.accounts import service as accounts
        from tidings.accounts.repository import AccountRepository
        from tidings.core.environments import Environment

        async with ctx.sessions() as session:
            account = await accounts.create_account(AccountRepository(session), ctx.clock, "Bench")
            await session.commit()
        await create(ctx, account.id, Environment.SANDBOX, WebhookCreate(url=url))

        async def write(session: AsyncSession) -> None:
            now = ctx.clock.now()
            for index in range(count):
                session.add(
                    OutboxEvent(
                        id=new_id("evt"),
                        account_id=account.id,
                        environment="sandbox",
                        type="message.sent",
                        subject_id=new_id("msg"),
                        payload={"id": f"msg_{index}", "status": "sent"},
                        created_at=now,
                    )
                )

        started = time.perf_counter()
        await ctx.runtime.writer.submit(write)
        ctx.runtime.wake()
        while True:
            async with ctx.sessions() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status == "delivered")
                )
            if done == count:
                break
            await asyncio.sleep(0.02)
        return count / (time.perf_counter() - started)


async def main(count: int) -> None:
    port = 18765
    process = multiprocessing.Process(target=_receiver, args=(port,), daemon=True)
    process.start()
    await asyncio.sleep(0.5)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            ours = await tidings_rate(url, count, Path(data_dir))
        plain = await plain_loop(url, count, signing.new_secret())
    finally:
        process.terminate()
        process.join()
    print(f"events: {count}, concurrency: {CONCURRENCY}")
    print(f"tidings webhooks (outbox -> fan-out -> lease -> POST -> log): {ours:8.0f} events/s")
    print(f"plain loop of signed POSTs (httpx):                          {plain:8.0f} POSTs/s")
    print(f"ratio: {ours / plain:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
