"""Scale-out on PostgreSQL: a waiting send learns its verdict by push (NOTIFY).

An API process (``serve --no-dispatch``) and a ``tidings worker`` share a schema.
The waiting requests' own reads and their wait are set to an hour, and the client
gives up after a minute: a send answered at all was told by the worker's
notification (neither a poll nor the end of the wait answered it), and its answer
is what ``GET /api/v4/messages/{id}`` shows. The API process's listening
connection, killed with ``pg_terminate_backend``, comes back, and sends made then
and after still get their verdicts.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.conftest import make_settings
from tests.support.databases import (
    POSTGRES_DSN,
    PostgresSchema,
    migrate_to_head,
    postgres_available,
    require_or_skip,
)
from tests.support.load import make_login, token_for
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready
from tests.support.users import create_test_user
from tidings.app import create_app
from tidings.messages.verdict_feed import PAYLOAD_LIMIT, notify_verdicts, payloads

pytestmark = pytest.mark.postgres

# Longer than the client waits: an answer that arrives came from a notification.
POLL_SECONDS = "3600"
WAIT_SECONDS = "3600"
# A bound against hangs, not a speed check (a loaded two-core machine is slow).
CLIENT_TIMEOUT_SECONDS = 60


@dataclass
class Deployment:
    base: str
    token: str
    schema: str
    channel: str


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, *args], env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as schema:
        database = {
            "TIDINGS_DATABASE_URL": schema.url,
            "TIDINGS_DATABASE_SCHEMA": schema.name,
            "TIDINGS_RATE_LIMIT__PER_MINUTE": "1000000",
            "TIDINGS_SEND_WAIT_SECONDS": WAIT_SECONDS,
            "TIDINGS_SEND_WAIT_POLL_SECONDS": POLL_SECONDS,
            # No receipt during the test: the message stays as its verdict left it.
            "TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS": "3600",
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
        ]
        try:
            wait_ready(base, processes[0])
            token = asyncio.run(token_for(base, username, password))
            yield Deployment(base, token, schema.name, f"tidings_verdicts_{schema.name}")
        finally:
            for process in processes:
                stop(process)
            print(log.read_text()[-3000:])


async def _send_waiting(deployment: Deployment, count: int) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {deployment.token}"}
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS, headers=headers) as client:

        async def one(index: int) -> dict[str, Any]:
            answer = await client.post(
                f"{deployment.base}/sandbox/api/v4/sms/send",
                json={"to": f"+39333{index:07d}", "body": f"waited {index}"},
            )
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        return list(await asyncio.gather(*(one(index) for index in range(count))))


async def _read(deployment: Deployment, message_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(
            f"{deployment.base}/sandbox/api/v4/messages/{message_id}",
            headers={"Authorization": f"Bearer {deployment.token}"},
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


async def _listeners(channel: str) -> list[int]:
    """The backends listening for verdicts (named after their channel)."""
    connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", channel
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def _terminate(pid: int) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
    try:
        assert await connection.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


def _listener_other_than(channel: str, old: int) -> int:
    # A bound against hangs, not a speed check.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = asyncio.run(_listeners(channel))
        if pids and old not in pids:
            assert len(pids) == 1, pids
            return pids[0]
        time.sleep(0.1)
    raise AssertionError(f"no new listener on {channel}")


@pytest.mark.slow
def test_waiting_sends_are_told_their_verdict(deployment: Deployment) -> None:
    # One listener, in the API process (the worker waits for nothing).
    assert len(asyncio.run(_listeners(deployment.channel))) == 1
    answers = asyncio.run(_send_waiting(deployment, 20))
    assert [answer["status"] for answer in answers] == ["sent"] * 20
    # What the waiting request was answered is what the API shows for the message.
    for answer in answers[:5]:
        assert asyncio.run(_read(deployment, answer["id"])) == answer


@pytest.mark.slow
def test_a_dropped_listener_comes_back(deployment: Deployment) -> None:
    [first] = asyncio.run(_listeners(deployment.channel))
    assert [a["status"] for a in asyncio.run(_send_waiting(deployment, 3))] == ["sent"] * 3

    async def drop_while_sending() -> list[dict[str, Any]]:
        # Sends already waiting, and sends made while the listener is away.
        sending = asyncio.create_task(_send_waiting(deployment, 10))
        await _terminate(first)
        return await sending

    answers = asyncio.run(drop_while_sending())
    assert [answer["status"] for answer in answers] == ["sent"] * 10
    second = _listener_other_than(deployment.channel, first)
    assert second != first
    answers = asyncio.run(_send_waiting(deployment, 10))
    assert [answer["status"] for answer in answers] == ["sent"] * 10


def test_payloads_stay_under_the_limit() -> None:
    ids = [f"msg_{index:026d}" for index in range(2000)]
    chunks = payloads(ids)
    assert all(len(chunk.encode()) <= PAYLOAD_LIMIT < 8000 for chunk in chunks)
    assert [mid for chunk in chunks for mid in chunk.split(",")] == ids
    assert payloads([]) == []


def test_notifications_leave_with_the_commit() -> None:
    """Many ids in one transaction: every one is heard, and none before the commit."""
    require_or_skip(postgres_available(), "PostgreSQL")
    ids = [f"msg_{index:026d}" for index in range(1000)]
    channel = "tidings_verdicts_commit_test"

    async def run() -> tuple[list[str], list[str]]:
        heard: list[str] = []
        listener = await asyncpg.connect(POSTGRES_DSN, timeout=10)
        await listener.add_listener(channel, lambda *args: heard.append(args[3]))
        engine = create_async_engine(
            POSTGRES_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
        )
        try:
            async with async_sessionmaker(engine)() as session:
                await notify_verdicts(session, channel, ids)
                # A round trip on the listener: anything sent would have come by now.
                await listener.fetchval("SELECT 1")
                before = list(heard)
                await session.commit()
            while len(",".join(heard).split(",")) < len(ids):
                await listener.fetchval("SELECT 1")
                await asyncio.sleep(0.01)
            return before, heard
        finally:
            await listener.close()
            await engine.dispose()

    before, heard = asyncio.run(asyncio.wait_for(run(), 60))
    assert before == []
    assert [mid for payload in heard for mid in payload.split(",")] == ids


def _in_process(test: Callable[[FastAPI, str, str], Awaitable[None]], tmp_path: Path) -> None:
    """``test(app, message_id, schema)`` with an API process's app (dispatch off, the
    requests' reads an hour apart) on a fresh schema, and one message queued in it."""
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as schema:
        settings = make_settings(
            tmp_path / "data",
            (schema.url, schema.name),
            dispatch=False,
            send_wait_poll_seconds=3600,
        )

        async def run() -> None:
            app = create_app(settings)
            await migrate_to_head(app)
            user = await create_test_user(app)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://127.0.0.1"
                ) as client:
                    token = await client.post(
                        "/sandbox/api/v4/auth/token",
                        json={"username": user.username, "password": user.password},
                    )
                    stored = await client.post(
                        "/sandbox/api/v4/sms/send",
                        json={"to": "+393331234567", "body": "hello"},
                        headers={
                            "Authorization": f"Bearer {token.json()['token']}",
                            "Prefer": "respond-async",
                        },
                    )
                    assert stored.status_code == 202, stored.text
                    await asyncio.wait_for(test(app, stored.json()["id"], schema.name), 60)

        asyncio.run(run())


async def _mark_sent(schema: str, message_id: str, *, notify: str | None) -> None:
    """What a worker's verdict does to the row, by hand (and its notification)."""
    connection = await asyncpg.connect(
        POSTGRES_DSN, timeout=10, server_settings={"search_path": schema}
    )
    try:
        async with connection.transaction():
            await connection.execute(
                "UPDATE messages SET status = 'sent' WHERE id = $1", message_id
            )
            if notify is not None:
                await connection.execute("SELECT pg_notify($1, $2)", notify, message_id)
    finally:
        await connection.close()


def test_a_verdict_heard_before_its_request_waits(tmp_path: Path) -> None:
    """A worker may record a verdict before the request registers its waiter."""

    async def test(app: FastAPI, message_id: str, schema: str) -> None:
        runtime = app.state.ctx.runtime
        feed = runtime.verdict_feed
        await _mark_sent(schema, message_id, notify=feed.channel)
        while feed.heard == 0:
            await asyncio.sleep(0.01)
        answer = await runtime.waiters.register(message_id)
        assert answer is not None
        assert (answer["id"], answer["status"]) == (message_id, "sent")

    _in_process(test, tmp_path)


def test_a_verdict_told_to_nobody_is_found_when_the_listener_is_back(tmp_path: Path) -> None:
    """Verdicts committed while the listener is away are read once it listens again."""

    async def test(app: FastAPI, message_id: str, schema: str) -> None:
        runtime = app.state.ctx.runtime
        feed = runtime.verdict_feed
        waiting = runtime.waiters.register(message_id)
        await _mark_sent(schema, message_id, notify=None)
        [pid] = await _listeners(feed.channel)
        await _terminate(pid)
        answer = await waiting
        assert answer is not None
        assert (answer["id"], answer["status"]) == (message_id, "sent")
        assert feed.connections == 2

    _in_process(test, tmp_path)
