"""Answers without waiting, scheduling, cancelling, listing, reports and opt-outs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login

SMS = "/sandbox/api/v4/sms/send"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_respond_async(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        SMS,
        json={"to": "+393331234567", "body": "Hi"},
        headers={**bearer(token), "Prefer": "respond-async"},
    )
    assert answer.status_code == 202
    assert answer.headers["preference-applied"] == "respond-async"
    assert answer.json()["status"] == "queued"
    await wait_for(client, token, answer.json()["id"], {"delivered"})


async def test_schedule_then_cancel(client: httpx.AsyncClient, token: str) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await client.post(
        SMS,
        json={"to": "+393331234567", "body": "Later", "scheduledAt": later},
        headers=bearer(token),
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "scheduled" and body["scheduledAt"]
    canceled = await client.post(
        f"/sandbox/api/v4/messages/{body['id']}/cancel", headers=bearer(token)
    )
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    again = await client.post(
        f"/sandbox/api/v4/messages/{body['id']}/cancel", headers=bearer(token)
    )
    assert again.status_code == 409


async def test_scheduled_message_is_sent_when_due(client: httpx.AsyncClient, token: str) -> None:
    # Far enough ahead that a slow request on a loaded machine still finds it future.
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    answer = await client.post(
        SMS,
        json={"to": "+393331234567", "body": "Soon", "scheduledAt": soon},
        headers=bearer(token),
    )
    final = await wait_for(client, token, answer.json()["id"], {"delivered"}, timeout=60)
    assert [e["status"] for e in final["events"] if e["applied"]] == [
        "scheduled",
        "queued",
        "sent",
        "delivered",
    ]


async def test_cancel_after_sending_conflicts(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        SMS, json={"to": "+393331234567", "body": "Hi"}, headers=bearer(token)
    )
    canceled = await client.post(
        f"/sandbox/api/v4/messages/{answer.json()['id']}/cancel", headers=bearer(token)
    )
    assert canceled.status_code == 409


async def test_list_filters_and_pages(client: httpx.AsyncClient, token: str) -> None:
    ids = []
    for index in range(5):
        answer = await client.post(
            SMS, json={"to": "+393331234567", "body": f"n{index}"}, headers=bearer(token)
        )
        ids.append(answer.json()["id"])
    await client.post(
        "/sandbox/api/v4/whatsapp/chats/+393331234568/message",
        json={"body": "w"},
        headers=bearer(token),
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"channel": "sms", "limit": 2}
        if cursor:
            params["after"] = cursor
        page = (
            await client.get("/sandbox/api/v4/messages", params=params, headers=bearer(token))
        ).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    only_whatsapp = await client.get(
        "/sandbox/api/v4/messages", params={"channel": "whatsapp"}, headers=bearer(token)
    )
    assert len(only_whatsapp.json()["data"]) == 1
    by_to = await client.get(
        "/sandbox/api/v4/messages", params={"to": "+393331234568"}, headers=bearer(token)
    )
    assert [m["channel"] for m in by_to.json()["data"]] == ["whatsapp"]
    bad = await client.get("/sandbox/api/v4/messages", params={"limit": 501}, headers=bearer(token))
    assert bad.status_code == 422


async def test_other_environment_and_account_see_nothing(
    client: httpx.AsyncClient, user: TestUser, token: str
) -> None:
    answer = await client.post(
        SMS, json={"to": "+393331234567", "body": "Hi"}, headers=bearer(token)
    )
    message_id = answer.json()["id"]
    production = await login(client, user, base="")
    assert (
        await client.get(f"/api/v4/messages/{message_id}", headers=bearer(production))
    ).status_code == 404
    listed = await client.get("/api/v4/messages", headers=bearer(production))
    assert listed.json()["data"] == []


async def test_sms_report(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        SMS, json={"to": "+393331234567", "body": "Hi"}, headers=bearer(token)
    )
    message_id = answer.json()["id"]
    await wait_for(client, token, message_id, {"delivered"})
    report = await client.get(f"/sandbox/api/v4/sms/reports/{message_id}", headers=bearer(token))
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "delivered" and body["segments"] == 1
    assert [e["status"] for e in body["events"]] == ["queued", "sent", "delivered"]
    missing = await client.get("/sandbox/api/v4/sms/reports/msg_nope", headers=bearer(token))
    assert missing.status_code == 404


async def test_stop_and_start(client: httpx.AsyncClient, token: str) -> None:
    inbound = "/sandbox/api/v4/sandbox/inbound"
    stop = await client.post(
        inbound,
        json={"channel": "sms", "from": "+393339999999", "body": " stop "},
        headers=bearer(token),
    )
    assert stop.status_code == 201 and stop.json()["status"] == "received"
    refused = await client.post(
        SMS, json={"to": "+393339999999", "body": "Hi"}, headers=bearer(token)
    )
    assert refused.status_code == 422 and refused.json()["code"] == "recipient_opted_out"
    await client.post(
        inbound,
        json={"channel": "sms", "from": "+393339999999", "body": "START"},
        headers=bearer(token),
    )
    allowed = await client.post(
        SMS, json={"to": "+393339999999", "body": "Hi"}, headers=bearer(token)
    )
    assert allowed.status_code == 200


async def test_inbound_is_sandbox_only(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user, base="")
    answer = await client.post(
        "/api/v4/sandbox/inbound",
        json={"channel": "sms", "from": "+393339999999", "body": "hi"},
        headers=bearer(token),
    )
    assert answer.status_code == 403
