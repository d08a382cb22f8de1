"""The batches pages: progress served live until the batch is finished, cancel of a
scheduled batch, scoping and CSRF."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in, signed_in_token
from tests.support.users import TestUser, bearer, create_test_user, login

NUMBERS = [f"+39333123456{i}" for i in range(5)]


async def _bulk(client: httpx.AsyncClient, token: str, **extra: object) -> str:
    answer = await client.post(
        "/sandbox/api/v4/sms/bulk",
        json={"recipients": [{"to": n} for n in NUMBERS], "body": "Hi", "name": "News", **extra},
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def test_progress_until_completed(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    batch_id = await _bulk(client, token)
    await sign_in(client, user, base="/sandbox")
    listed = await client.get("/sandbox/console/batches")
    assert f'href="/sandbox/console/batches/{batch_id}"' in listed.text
    assert ">News</a>" in listed.text
    page = await client.get(f"/sandbox/console/batches/{batch_id}")
    assert page.status_code == 200
    assert 'id="progress"' in page.text
    for _ in range(200):
        fragment = await client.get(f"/sandbox/console/batches/{batch_id}/progress")
        assert fragment.text.startswith("<section")
        if "completed" in fragment.text:
            break
        assert f'data-refresh="/sandbox/console/batches/{batch_id}/progress"' in fragment.text
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the batch never completed")
    # Finished: the fragment no longer asks to be refreshed.
    assert "data-refresh" not in fragment.text
    assert '<strong id="batch-done">5 of 5</strong>' in fragment.text
    assert f"/sandbox/console/messages?batch={batch_id}&amp;status=delivered" in fragment.text
    # The list's table stops refreshing once no batch is unfinished.
    table = await client.get("/sandbox/console/batches/table")
    assert table.text.startswith("<div") and "data-refresh" not in table.text
    assert "5 of 5 final" in table.text


async def test_cancel_a_scheduled_batch_scoped_and_csrf(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    token = await login(client, user)
    batch_id = await _bulk(client, token, scheduledAt=later)
    other = await create_test_user(app, "grace@example.com")
    theirs = await _bulk(client, await login(client, other), scheduledAt=later)

    await sign_in(client, user, base="/sandbox")
    form = await signed_in_token(client, "/sandbox")
    page = await client.get(f"/sandbox/console/batches/{batch_id}")
    assert "Cancel what is not sent" in page.text and "data-refresh" not in page.text
    assert (await client.get(f"/sandbox/console/batches/{theirs}")).status_code == 404
    assert (await client.get(f"/sandbox/console/batches/{theirs}/progress")).status_code == 404
    assert (await client.get(f"/console/batches/{batch_id}")).status_code == 404
    refused = await client.post(f"/sandbox/console/batches/{theirs}/cancel", data={"csrf": form})
    assert refused.status_code == 404
    assert theirs not in (await client.get("/sandbox/console/batches")).text

    no_token = await client.post(f"/sandbox/console/batches/{batch_id}/cancel", data={})
    assert no_token.status_code == 403
    canceled = await client.post(f"/sandbox/console/batches/{batch_id}/cancel", data={"csrf": form})
    assert canceled.status_code == 303
    after = await client.get(canceled.headers["location"])
    assert "Canceled:" in after.text
    assert '<span class="status bad" id="batch-status">canceled</span>' in after.text
    assert "Cancel what is not sent" not in after.text
