"""SMS bulk: validation before storage, rendering, progress, completion, reports."""

from __future__ import annotations

import httpx
import pytest

from tests.bulk.support import wait_for_batch
from tests.support.users import TestUser, bearer, login

BULK = "/sandbox/api/v4/sms/bulk"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_a_batch_is_validated_rendered_sent_and_completed(
    client: httpx.AsyncClient, token: str
) -> None:
    recipients = [
        {"to": "+393331234001", "variables": {"name": "Ada"}},
        {"to": "393331234002", "variables": {"name": "Grace"}},
        {"to": "+39 333 123 4001", "variables": {"name": "Ada again"}},  # duplicate
        {"to": "not a number", "variables": {"name": "X"}},
        {"to": "+15550000005", "variables": {"name": "Opted"}},  # opted out
        {"to": "+393331234003", "variables": {}},  # no name
        {"to": "+15550000001", "variables": {"name": "Refused"}},  # provider refuses
    ]
    answer = await client.post(
        BULK,
        json={"recipients": recipients, "body": "Hi {{ name }}, your table is ready.", "name": "t"},
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "accepted"
    assert (body["total"], body["accepted"], body["rejected"], body["duplicates"]) == (7, 3, 3, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (2, "duplicate_recipient"),
        (3, "invalid_phone_number"),
        (4, "recipient_opted_out"),
        (5, "missing_variable"),
    ]
    batch = await wait_for_batch(client, token, body["id"])
    assert batch["status"] == "completed"
    assert batch["counts"] == {"delivered": 2, "failed": 1}
    assert batch["pending"] == 0 and batch["startedAt"] and batch["finishedAt"]

    listed = await client.get(
        "/sandbox/api/v4/messages",
        params={"batchId": body["id"], "limit": 10},
        headers=bearer(token),
    )
    texts = sorted((m["to"], m["body"]) for m in listed.json()["data"])
    assert texts == [
        ("+15550000001", "Hi Refused, your table is ready."),
        ("+393331234001", "Hi Ada, your table is ready."),
        ("+393331234002", "Hi Grace, your table is ready."),
    ]
    report = await client.get(f"/sandbox/api/v4/sms/reports/{body['id']}", headers=bearer(token))
    assert report.status_code == 200, report.text
    assert report.json()["counts"] == {"delivered": 2, "failed": 1}
