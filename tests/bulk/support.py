"""Helpers of the bulk tests: waiting for a batch to finish, bounded in time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.users import bearer


async def wait_for_batch(
    client: httpx.AsyncClient,
    token: str,
    batch_id: str,
    *,
    base: str = "/sandbox",
    timeout: float = 30,
) -> dict[str, Any]:
    """The batch once it is finished (every message final, the sweep ran)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = await client.get(f"{base}/api/v4/batches/{batch_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["finishedAt"] is not None:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{batch_id} did not finish: {body}")
