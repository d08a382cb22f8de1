"""Polling a message until it reaches a status, bounded in time; an API process with
queued sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.databases import migrate_to_head
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.settings import Settings


async def wait_for(
    client: httpx.AsyncClient,
    token: str,
    message_id: str,
    statuses: set[str],
    *,
    base: str = "/sandbox",
    timeout: float = 10,
) -> dict[str, Any]:
    """The message once its status is one of ``statuses`` (read at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.get(f"{base}/api/v4/messages/{message_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in statuses:
            return body
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message_id} is {body['status']}, wanted {statuses}: {body}")
        await asyncio.sleep(0.02)


async def reports_due_by_now_recorded(
    client: httpx.AsyncClient, token: str, *, base: str = "/sandbox"
) -> None:
    """Return once every simulated report due by now has been recorded.

    The sandbox reports in the order reports fall due, each a fixed delay after
    the one before. A WhatsApp message to an ordinary number sent now is reported
    delivered and then read after every report already scheduled; once it reads
    as read, a report still missing for an earlier message will never come. This
    proves a negative ("never read", "stays delivered") without guessing a sleep.
    """
    answer = await client.post(
        f"{base}/api/v4/whatsapp/chats/+393339999999/message",
        json={"body": "barrier"},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    await wait_for(client, token, answer.json()["id"], {"read"}, base=base)


def statuses_of(message: dict[str, Any], *, applied_only: bool = True) -> list[str]:
    return [e["status"] for e in message["events"] if e["applied"] or not applied_only]


@asynccontextmanager
async def queued_sends(
    settings: Settings, count: int
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str, list[str]]]:
    """An API process of ``settings`` (started, migrated, with a user) that has
    accepted ``count`` sandbox SMS with ``Prefer: respond-async``: the app, a client
    of it, the user's token and the messages' ids."""
    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            token = await login(http, await create_test_user(application))
            yield application, http, token, await sent_async(http, token, count)


async def sent_async(http: httpx.AsyncClient, token: str, count: int) -> list[str]:
    """The ids of ``count`` sandbox SMS sent with ``Prefer: respond-async`` (to
    ``+39333123456<n>``), each answered 202."""
    ids = []
    for index in range(count):
        answer = await http.post(
            "/sandbox/api/v4/sms/send",
            json={"to": f"+39333123456{index}", "body": f"Hi {index}"},
            headers={**bearer(token), "Prefer": "respond-async"},
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids
