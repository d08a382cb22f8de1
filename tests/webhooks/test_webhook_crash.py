"""A server killed with SIGKILL during webhook delivery loses no event.

A real ``tidings serve`` process delivers the events of 150 sandbox SMS to a
local receiver and is killed mid-way; after a restart on the same data
directory, every event of the outbox reaches the receiver (at least once, each
with its one ``webhook-id``), verified with the standardwebhooks package.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.load import make_login, send_many, sqlite_column, token_for
from tests.support.processes import TIDINGS, cli_env, free_port, stop
from tests.webhooks.hook_receiver import Receiver

COUNT = 150
MESSAGE_EVENT_IDS = "SELECT id FROM outbox_events WHERE type LIKE 'message.%'"
ENV = {
    "TIDINGS_RATE_LIMIT__PER_MINUTE": "1000000",
    "TIDINGS_WEBHOOKS__RETRY_SCHEDULE": "0.2,0.5,1,1,1,1,1,1",
    "TIDINGS_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.1",
    "TIDINGS_WEBHOOKS__LEASE_SECONDS": "2",
    "TIDINGS_WEBHOOKS__CONCURRENCY": "4",
    "TIDINGS_WEBHOOKS__ALLOW_PRIVATE_IN_SANDBOX": "true",
    "TIDINGS_DELIVERY__LEASE_SECONDS": "2",
    "TIDINGS_SANDBOX__RECOVERY_INTERVAL_SECONDS": "0.5",
}


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=cli_env(data_dir, **ENV),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


async def _ready(base: str, process: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, "the server exited"
            try:
                if (await client.get(f"{base}/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(base)


async def _eventually(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_sigkill_during_webhook_delivery_loses_no_event(
    tmp_path: Path, receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    _, username, password = make_login(data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    server = _start(data_dir, port, log)
    try:
        await _ready(base, server)
        token = await token_for(base, username, password)
        async with httpx.AsyncClient() as client:
            created = await client.post(
                f"{base}/sandbox/api/v4/webhooks/create",
                json={"url": receiver.url, "events": ["message.*"]},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        await send_many(base, token, COUNT, concurrency=16)
        await _eventually(lambda: len(receiver.delivered()) >= 40, 30)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        before_restart = {r.headers["webhook-id"] for r in receiver.delivered()}
        server = _start(data_dir, port, log)
        await _ready(base, server)
        database = data_dir / "tidings.db"

        def all_in() -> bool:
            received = {r.headers["webhook-id"] for r in receiver.delivered()}
            return set(sqlite_column(database, MESSAGE_EVENT_IDS)) <= received

        await _eventually(all_in, 90)
    finally:
        stop(server)
    received_ids = {r.headers["webhook-id"] for r in receiver.delivered()}
    outbox_ids = set(sqlite_column(data_dir / "tidings.db", MESSAGE_EVENT_IDS))
    assert len(before_restart) < len(outbox_ids), "the kill came after everything was delivered"
    assert outbox_ids <= received_ids, f"{len(outbox_ids - received_ids)} events never arrived"
    assert len(outbox_ids) >= COUNT * 3  # queued, sent, delivered
    for payload in receiver.verified(secret):
        assert payload["type"].startswith("message.")
    repeats = len(receiver.delivered()) - len(received_ids)
    print(f"\nwebhook crash test: {len(outbox_ids)} events, {repeats} delivered twice")
