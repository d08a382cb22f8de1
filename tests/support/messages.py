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
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = await client.get(f"{base}/api/v4/messages/{message_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} stayed {body.get('status')}, wanted {statuses}: {body}")


def statuses_of(message: dict[str, Any], *, applied_only: bool = True) -> list[str]:
    return [e["status"] for e in message["events"] if e["applied"] or not applied_only]
