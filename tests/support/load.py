"""Sending many messages to a real server process, bounded in count and time."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head, run_in_own_loop
from tests.support.users import TestUser, create_test_user
from tidings.app import create_app


def make_login(data_dir: Path, **env: str) -> tuple[str, str, str]:
    """A migrated database with an account and a user, for a server process started
    afterwards on ``data_dir`` with ``env``; (account id, username, password).

    Made in this process (tests/cli covers the same through the command line), which
    spares three interpreter starts per test.
    """
    database = (env.get("TIDINGS_DATABASE_URL"), env.get("TIDINGS_DATABASE_SCHEMA"))
    settings = make_settings(data_dir, database)  # type: ignore[arg-type]

    async def prepare() -> TestUser:
        app = create_app(settings)
        try:
            await migrate_to_head(app)
            return await create_test_user(app, "load@example.com")
        finally:
            await app.state.ctx.engine.dispose()

    user = run_in_own_loop(prepare)
    return user.account_id, user.username, user.password


async def token_for(base: str, username: str, password: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            f"{base}/sandbox/api/v4/auth/token",
            json={"username": username, "password": password, "expiresIn": 3600},
        )
        answer.raise_for_status()
        return str(answer.json()["token"])


async def send_many(
    base: str,
    token: str,
    count: int,
    *,
    concurrency: int = 32,
    prefer_async: bool = True,
    tag: str = "load",
) -> list[str]:
    """Send ``count`` sandbox SMS; the ids the server answered with. ``tag`` names the
    run in the texts and idempotency keys (another tag, other messages)."""
    headers = {"Authorization": f"Bearer {token}"}
    if prefer_async:
        headers["Prefer"] = "respond-async"
    ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                # Distinct valid Italian mobile numbers.
                to = f"+39333{index:07d}"
                # As a careful client does: a key per message, so that a request lost
                # with its connection (a keep-alive closed as it was reused) is retried
                # without sending twice.
                for attempt in range(3):
                    try:
                        answer = await client.post(
                            f"{base}/sandbox/api/v4/sms/send",
                            json={"to": to, "body": f"{tag} {index}"},
                            headers={"Idempotency-Key": f"{tag}-{index}"},
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                assert answer.status_code in (200, 202), answer.text
                ids.append(answer.json()["id"])

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 300)
    return ids


def sqlite_statuses(database: Path) -> dict[str, str]:
    with sqlite3.connect(database, timeout=30) as connection:
        return dict(connection.execute("SELECT id, status FROM messages").fetchall())


def sqlite_scalar(database: Path, query: str) -> Any:
    with sqlite3.connect(database, timeout=30) as connection:
        return connection.execute(query).fetchone()[0]


def sqlite_column(database: Path, query: str) -> list[Any]:
    with sqlite3.connect(database, timeout=30) as connection:
        return [row[0] for row in connection.execute(query).fetchall()]
