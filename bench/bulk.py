"""Bulk sending, end to end: one SMS bulk request of N recipients (100,000 by
default) against the sandbox, with pacing off.

    .venv/bin/python bench/bulk.py [recipients]

Prints the time to the 202 answer, the time until every message is final (the
batch finished), messages per second end to end, the peak memory of the
process, and, as the baseline measured in the same run, a plain SQLAlchemy Core
``executemany`` of the same message rows into the same database, with the
answer's time as a ratio of it. Tidings runs in this process with its real
runtime (group committer, dispatcher, sandbox network) on a fresh SQLite file,
as ``tidings serve`` runs it; the request goes through the ASGI app.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text

from tidings.accounts import service
from tidings.accounts.repository import AccountRepository
from tidings.app import create_app
from tidings.core.clock import SystemClock, as_utc
from tidings.core.ids import new_ids
from tidings.core.key_ring import new_key_entry
from tidings.db import migrate
from tidings.messages.models import Message
from tidings.settings import Settings

PASSWORD = "bench password 1234"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def core_baseline(app_engine: object, account_id: str, count: int) -> float:
    """Seconds for Core executemany of ``count`` message rows, in 5,000-row chunks."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": message_id,
            "account_id": account_id,
            "environment": "sandbox",
            "channel": "sms",
            "direction": "outbound",
            "status": "canceled",
            "to_address": f"+3933{index:08d}",
            "body": f"Hi friend {index}, your table is ready.",
            "content": {},
            "segments": 1,
            "encoding": "GSM-7",
            "credits": 0,
            "batch_id": "bat_baseline",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for index, message_id in enumerate(new_ids("msg", count))
    ]
    started = time.perf_counter()
    async with app_engine.begin() as connection:  # type: ignore[attr-defined]
        for start in range(0, count, 5000):
            await connection.execute(insert(Message), rows[start : start + 5000])
    elapsed = time.perf_counter() - started
    async with app_engine.begin() as connection:  # type: ignore[attr-defined]
        await connection.execute(text("DELETE FROM messages WHERE batch_id = 'bat_baseline'"))
    # The bulk request then starts from the same state the baseline did.
    async with app_engine.connect() as connection:  # type: ignore[attr-defined]
        await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await connection.exec_driver_sql("VACUUM")
    return elapsed


async def main(count: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="tidings-bench-bulk-"))
    settings = Settings(
        data_dir=data, sqlite_synchronous="NORMAL", secrets_keys=new_key_entry("bench")
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
    # Encoded once, up front: the client's own work is not the server's answer time.
    request_body = json.dumps(
        {
            "recipients": [
                {"to": f"+3933{index:08d}", "variables": {"name": f"friend {index}"}}
                for index in range(count)
            ],
            "body": "Hi {{name}}, your table is ready.",
        }
    ).encode()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
    ):
        login = await client.post(
            "/sandbox/api/v4/auth/token", json={"username": "bench", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        baseline = await core_baseline(ctx.engine, account.id, count)

        started_at = datetime.now(UTC)
        started = time.perf_counter()
        answer = await client.post(
            "/sandbox/api/v4/sms/bulk",
            content=request_body,
            headers={**headers, "Content-Type": "application/json"},
        )
        answered = time.perf_counter() - started
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["id"]
        assert answer.json()["accepted"] == count, answer.json()
        while True:
            batch = (
                await client.get(f"/sandbox/api/v4/batches/{batch_id}", headers=headers)
            ).json()
            if batch["finishedAt"] is not None:
                break
            if "-v" in sys.argv:
                print(
                    f"{time.perf_counter() - started:6.1f} s  submitted "
                    f"{ctx.runtime.dispatcher.submissions:6d}  {batch['counts']}"
                )
            # Polling is light: the finish is read from the messages afterwards.
            await asyncio.sleep(1.0)
        async with ctx.engine.connect() as connection:
            last = await connection.scalar(
                select(func.max(Message.updated_at)).where(Message.batch_id == batch_id)
            )
        finished = (as_utc(last) - started_at).total_seconds()
    print(f"recipients            {count}")
    print(f"answer (202)          {answered:.2f} s   (goal: within 3 s)")
    print(f"every message final   {finished:.2f} s after the request   counts {batch['counts']}")
    print(f"end to end            {count / finished:.0f} messages/s   (goal: 2,000 or more)")
    print(f"peak memory (RSS)     {peak_rss_mib():.0f} MiB")
    print(f"baseline: Core executemany of the same rows: {baseline:.2f} s")
    print(f"ratio answer / baseline: {answered / baseline:.2f}")


if __name__ == "__main__":
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    asyncio.run(main(int(numbers[0]) if numbers else 100_000))
