"""SMS bulk: validation before storage, rendering, progress, completion, reports,
scheduling, idempotency and limits. The main flow runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.bulk.support import wait_for_batch
from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tidings.settings import Settings

BULK = "/sandbox/api/v4/sms/bulk"


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, database_url, bulk={"max_recipients": 50, "errors_listed": 4})


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
    assert "name" in body["errors"][3]["message"]
    batch = await wait_for_batch(client, token, body["id"])
    assert batch["status"] == "completed"
    assert batch["counts"] == {"delivered": 2, "failed": 1}
    assert batch["pending"] == 0 and batch["startedAt"] and batch["finishedAt"]
    assert batch["name"] == "t" and batch["channel"] == "sms"

    listed = await client.get(
        "/sandbox/api/v4/messages",
        params={"batchId": body["id"], "limit": 10},
        headers=bearer(token),
    )
    messages = listed.json()["data"]
    assert sorted((m["to"], m["body"]) for m in messages) == [
        ("+15550000001", "Hi Refused, your table is ready."),
        ("+393331234001", "Hi Ada, your table is ready."),
        ("+393331234002", "Hi Grace, your table is ready."),
    ]
    assert all(m["batchId"] == body["id"] and m["segments"] == 1 for m in messages)
    one = await client.get(f"/sandbox/api/v4/messages/{messages[0]['id']}", headers=bearer(token))
    assert one.json()["events"][0]["status"] == "queued"

    report = await client.get(f"/sandbox/api/v4/sms/reports/{body['id']}", headers=bearer(token))
    assert report.status_code == 200, report.text
    assert report.json()["counts"] == {"delivered": 2, "failed": 1}
    assert report.json()["accepted"] == 3

    batches = await client.get("/sandbox/api/v4/batches", headers=bearer(token))
    assert [b["id"] for b in batches.json()["data"]] == [body["id"]]


async def test_a_scheduled_batch_waits_and_can_be_canceled(
    client: httpx.AsyncClient, token: str
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    answer = await client.post(
        BULK,
        json={
            "recipients": [{"to": "+393331234001"}, {"to": "+393331234002"}],
            "body": "Later",
            "scheduledAt": later,
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "scheduled"
    batch_id = answer.json()["id"]
    shown = (await client.get(f"/sandbox/api/v4/batches/{batch_id}", headers=bearer(token))).json()
    assert shown["status"] == "scheduled" and shown["counts"] == {"scheduled": 2}

    canceled = await client.post(
        f"/sandbox/api/v4/batches/{batch_id}/cancel", headers=bearer(token)
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["counts"] == {"canceled": 2}
    assert canceled.json()["status"] == "canceled"
    finished = await wait_for_batch(client, token, batch_id)
    assert finished["status"] == "canceled"
    again = await client.post(f"/sandbox/api/v4/batches/{batch_id}/cancel", headers=bearer(token))
    assert again.status_code == 409
    assert again.json()["code"] == "batch_finished"


async def test_the_same_idempotency_key_replays_the_batch(
    client: httpx.AsyncClient, token: str
) -> None:
    request = {"recipients": [{"to": "+393331234001"}], "body": "Once"}
    headers = {**bearer(token), "Idempotency-Key": "bulk-1"}
    first = await client.post(BULK, json=request, headers=headers)
    second = await client.post(BULK, json=request, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    batches = await client.get("/sandbox/api/v4/batches", headers=bearer(token))
    assert len(batches.json()["data"]) == 1
    other = await client.post(BULK, json={**request, "body": "Twice"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


async def test_limits_and_shapes_are_refused_with_a_clear_answer(
    client: httpx.AsyncClient, token: str
) -> None:
    too_many = [{"to": f"+3933312340{i:02d}"} for i in range(51)]
    answer = await client.post(
        BULK, json={"recipients": too_many, "body": "x"}, headers=bearer(token)
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "too_many_recipients"

    neither = await client.post(BULK, json={"body": "x"}, headers=bearer(token))
    assert neither.status_code == 422
    assert neither.json()["errors"][0]["field"] == "recipients"

    empty = await client.post(BULK, json={"recipients": [], "body": "x"}, headers=bearer(token))
    assert empty.status_code == 422

    no_list = await client.post(
        BULK, json={"listId": "lst_01JDQ3W6V2X4N8ZB7YH5K9T0RM", "body": "x"}, headers=bearer(token)
    )
    assert no_list.status_code == 404

    bad_sender = await client.post(
        BULK,
        json={"recipients": [{"to": "+393331234001"}], "body": "x", "from": "Bad!Sender"},
        headers=bearer(token),
    )
    assert bad_sender.status_code == 422
    assert bad_sender.json()["errors"][0]["code"] == "invalid_sender"


async def test_errors_are_listed_up_to_the_setting_and_all_counted(
    client: httpx.AsyncClient, token: str
) -> None:
    recipients = [{"to": f"bad-{i}"} for i in range(10)] + [{"to": "+393331234001"}]
    answer = await client.post(
        BULK, json={"recipients": recipients, "body": "x"}, headers=bearer(token)
    )
    body = answer.json()
    assert (body["rejected"], body["accepted"], len(body["errors"])) == (10, 1, 4)
    assert [e["index"] for e in body["errors"]] == [0, 1, 2, 3]


async def test_a_missing_variable_rejects_exactly_those_recipients(
    client: httpx.AsyncClient, token: str
) -> None:
    recipients = [
        {"to": f"+3933312340{i:02d}", "variables": {"name": "A", "code": str(i)}}
        if i % 3
        else {"to": f"+3933312340{i:02d}", "variables": {"name": "A"}}
        for i in range(12)
    ]
    answer = await client.post(
        BULK,
        json={"recipients": recipients, "body": "{{name}}: your code is {{code}}"},
        headers=bearer(token),
    )
    body = answer.json()
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (0, "missing_variable"),
        (3, "missing_variable"),
        (6, "missing_variable"),
        (9, "missing_variable"),
    ]
    assert body["accepted"] == 8
    listed = await client.get(
        "/sandbox/api/v4/messages", params={"batchId": body["id"]}, headers=bearer(token)
    )
    assert all(m["body"].startswith("A: your code is ") for m in listed.json()["data"])
    assert all("{{" not in m["body"] for m in listed.json()["data"])


async def test_a_lone_surrogate_rejects_that_recipient(
    client: httpx.AsyncClient, token: str
) -> None:
    # JSON may carry an unpaired surrogate as an escape; no channel can encode it.
    raw = (
        b'{"body": "Hi {{name}}", "recipients": ['
        b'{"to": "+393331234001", "variables": {"name": "Ada"}},'
        b'{"to": "+393331234002", "variables": {"name": "bad \\ud800"}}]}'
    )
    answer = await client.post(
        BULK, content=raw, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert answer.status_code == 202, answer.text
    assert [(e["index"], e["code"]) for e in answer.json()["errors"]] == [(1, "invalid_text")]
