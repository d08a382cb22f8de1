"""Polling a message until it reaches a status, bounded in time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.users import bearer


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
