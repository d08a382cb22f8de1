"""Scale-out on PostgreSQL: one API process and two workers share 600 messages.

The API runs with ``--no-dispatch``; two ``tidings worker`` processes claim with
``FOR UPDATE SKIP LOCKED`` and are woken by NOTIFY. Every message is submitted
exactly once (one ``sent`` event each), both workers take part, none is lost.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.databases import (
    POSTGRES_DSN,
    PostgresSchema,
    postgres_available,
    require_or_skip,
)
from tests.support.load import make_login, send_many, token_for
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready

COUNT = 600


async def _fetch(schema: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, *args], env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_the_work(tmp_path: Path) -> None:
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as schema:
        database = {
            "TIDINGS_DATABASE_URL": schema.url,
            "TIDINGS_DATABASE_SCHEMA": schema.name,
            "TIDINGS_RATE_LIMIT__PER_MINUTE": "1000000",
            "TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS": "0.05",
            # Small claims, so that both workers find work in 600 messages.
            "TIDINGS_DELIVERY__CLAIM_BATCH": "25",
        }
        data_dir = tmp_path / "data"
        _, username, password = make_login(data_dir, **database)
        env = cli_env(data_dir, **database)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "processes.log"
        processes = [
            _spawn(["serve", "--no-dispatch", "--port", str(port)], env, log),
            _spawn(["worker"], env, log),
            _spawn(["worker"], env, log),
        ]
        try:
            wait_ready(base, processes[0])
            token = asyncio.run(token_for(base, username, password))
            # A waiting send is answered with its verdict although another process
            # delivers it: the API learns it from the database.
            waited = httpx.post(
                f"{base}/sandbox/api/v4/sms/send",
                json={"to": "+393331234567", "body": "waited"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert waited.status_code == 200, waited.text
            assert waited.json()["status"] in ("sent", "delivered"), waited.text
            accepted = asyncio.run(send_many(base, token, COUNT))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                rows = asyncio.run(
                    _fetch(
                        schema.name,
                        "SELECT count(*) AS n FROM messages WHERE status <> 'delivered'",
                    )
                )
                if rows[0]["n"] == 0:
                    break
                time.sleep(0.5)
        finally:
            for process in processes:
                stop(process)
        statuses = asyncio.run(_fetch(schema.name, "SELECT id, status FROM messages"))
        by_id = {row["id"]: row["status"] for row in statuses}
        assert set(accepted) <= set(by_id)
        assert {by_id[mid] for mid in accepted} == {"delivered"}
        sent_events = asyncio.run(
            _fetch(
                schema.name,
                "SELECT message_id, count(*) AS n, min(detail->>'worker') AS worker "
                "FROM message_events WHERE status = 'sent' GROUP BY message_id",
            )
        )
        assert len(sent_events) == COUNT + 1
        assert all(row["n"] == 1 for row in sent_events), "a message was submitted twice"
        workers = {row["worker"] for row in sent_events}
        assert len(workers) == 2, f"expected both workers to deliver, got {workers}"
        share = sorted(sum(1 for row in sent_events if row["worker"] == w) for w in workers)
        print(f"\nscale-out: {COUNT + 1} messages, split between the workers as {share}")
