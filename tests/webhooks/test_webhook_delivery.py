"""Deliveries: Standard Webhooks signatures, events, rotation, logs, replay, 410,
Retry-After, redirects, auto-disable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import TestUser, bearer, login
from tests.webhooks.conftest import FAST_WEBHOOKS
from tests.webhooks.hook_receiver import Receiver, Recorded, verify_any
from tidings.messages.models import OutboxEvent

SBX = "/sandbox/api/v4/webhooks"
SMS = "/sandbox/api/v4/sms/send"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def create_hook(
    client: httpx.AsyncClient, token: str, url: str, **extra: Any
) -> dict[str, Any]:
    answer = await client.post(f"{SBX}/create", json={"url": url, **extra}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def deliveries(
    client: httpx.AsyncClient, token: str, hook: str, **params: Any
) -> list[dict[str, Any]]:
    answer = await client.get(f"{SBX}/{hook}/deliveries", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def recorded(
    client: httpx.AsyncClient, token: str, hook: str, done: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    """The hook's first delivery once ``done`` holds for it: the receiver's answer is
    recorded by the dispatcher just after the receiver saw the request."""
    deadline = time.monotonic() + 10
    while True:
        found = await deliveries(client, token, hook)
        if (found and done(found[0])) or time.monotonic() > deadline:
            assert found, "no delivery logged"
            return found[0]
        await asyncio.sleep(0.05)


async def test_message_events_verify_with_standardwebhooks(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    hook = await create_hook(client, token, receiver.url)
    sent = await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=bearer(token))
    message_id = sent.json()["id"]
    await eventually(lambda: len(receiver.delivered()) >= 3)
    payloads = receiver.verified(hook["secret"])
    assert [p["type"] for p in payloads] == ["message.queued", "message.sent", "message.delivered"]
    assert all(p["data"]["id"] == message_id for p in payloads)
    assert payloads[2]["data"]["status"] == "delivered"
    ids = [r.headers["webhook-id"] for r in receiver.delivered()]
    assert len(set(ids)) == 3 and all(i.startswith("evt_") for i in ids)
    # The receiver has answered; the dispatcher records each attempt just after.
    logged: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logged = await deliveries(client, token, hook["id"])
        if all(d["status"] == "delivered" for d in logged):
            break
        await asyncio.sleep(0.05)
    assert {d["eventId"] for d in logged} == set(ids)
    assert all(
        d["status"] == "delivered" and d["attemptLog"][0]["statusCode"] == 200 for d in logged
    )
    # The receiver is on loopback: answers of private addresses are never kept.
    assert logged[0]["attemptLog"][0]["response"] is None


async def test_inbound_and_filters(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    hook = await create_hook(client, token, receiver.url, events=["message.received"])
    other = Receiver()
    await other.start()
    try:
        prefix = await create_hook(client, token, other.url, events=["contact.*"])
        answer = await client.post(
            "/sandbox/api/v4/sandbox/inbound",
            json={"channel": "sms", "from": "+393331234567", "body": "STOP"},
            headers=bearer(token),
        )
        assert answer.status_code == 201, answer.text
        await eventually(lambda: len(receiver.delivered()) == 1 and len(other.delivered()) == 1)
        received = receiver.verified(hook["secret"])[0]
        assert received["type"] == "message.received"
        assert received["data"]["from"] == "+393331234567" and received["data"]["body"] == "STOP"
        opted = other.verified(prefix["secret"])[0]
        assert opted["type"] == "contact.opted_out"
    finally:
        await other.stop()


async def test_test_event_and_rotation_overlap(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    hook = await create_hook(client, token, receiver.url)
    tested = await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    assert tested.status_code == 202 and tested.json()["eventType"] == "webhook.test"
    await eventually(lambda: len(receiver.delivered()) == 1)
    assert receiver.verified(hook["secret"])[0]["type"] == "webhook.test"

    rotated = await client.post(f"{SBX}/{hook['id']}/rotate-secret", headers=bearer(token))
    new_secret = rotated.json()["secret"]
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.delivered()) == 2)
    during = receiver.delivered()[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    # Either secret alone verifies, unchanged library.
    assert verify_any(during, [hook["secret"]])["type"] == "webhook.test"
    assert verify_any(during, [new_secret])["type"] == "webhook.test"
    with pytest.raises(AssertionError):
        verify_any(during, ["whsec_" + "A" * 44])


async def test_rotation_overlap_ends(
    app: FastAPI, client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    app.state.ctx.settings.webhooks.rotation_overlap_seconds = 0
    hook = await create_hook(client, token, receiver.url)
    rotated = await client.post(f"{SBX}/{hook['id']}/rotate-secret", headers=bearer(token))
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.delivered()) == 1)
    request = receiver.delivered()[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verify_any(request, [rotated.json()["secret"]])
    with pytest.raises(AssertionError):
        verify_any(request, [hook["secret"]])


async def test_gone_disables_and_reenable_resumes(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: (410, {}, b"gone")
    hook = await create_hook(client, token, receiver.url)
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.requests) == 1)

    async def disabled() -> dict[str, Any]:
        return dict((await client.get(f"{SBX}/{hook['id']}", headers=bearer(token))).json())

    deadline = time.monotonic() + 5
    while (body := await disabled())["status"] != "disabled" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert body["status"] == "disabled" and "410" in body["disabledReason"] and body["disabledAt"]
    await asyncio.sleep(0.6)
    assert len(receiver.requests) == 1  # nothing more while disabled
    receiver.answer = lambda _r: (204, {}, b"")
    await client.patch(f"{SBX}/{hook['id']}", json={"enabled": True}, headers=bearer(token))
    await eventually(lambda: len(receiver.delivered()) == 1)
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    answers = iter([(503, {"retry-after": "1"}, b"busy"), (200, {}, b"ok")])
    times: list[float] = []

    def answer(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        times.append(time.monotonic())
        return next(answers)

    receiver.answer = answer
    hook = await create_hook(client, token, receiver.url)
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.delivered()) == 1)
    # The schedule alone would retry after 0.2 s.
    assert times[1] - times[0] >= 0.9


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    target = Receiver()
    await target.start()
    try:
        for location in (
            target.url,
            "http://127.0.0.1/x",
            "http://10.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
        ):
            receiver.answer = lambda _r, location=location: (302, {"location": location}, b"")
            receiver.requests.clear()
            hook = await create_hook(client, token, receiver.url)
            await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
            await eventually(lambda: len(receiver.requests) >= 1)
            logged = await recorded(client, token, hook["id"], lambda d: d["lastStatusCode"])
            assert logged["status"] == "pending" and logged["lastStatusCode"] == 302
            await client.delete(f"{SBX}/{hook['id']}", headers=bearer(token))
        assert target.requests == []
    finally:
        await target.stop()


async def test_log_filters_retry_and_replay(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: (500, {}, b"x" * 5000)
    hook = await create_hook(client, token, receiver.url)
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    attempts = len(FAST_WEBHOOKS["retry_schedule"]) + 1  # type: ignore[arg-type]
    await eventually(lambda: len(receiver.requests) == attempts)
    await recorded(client, token, hook["id"], lambda d: d["status"] == "failed")
    failed = await deliveries(client, token, hook["id"], success="false")
    assert len(failed) == 1 and failed[0]["status"] == "failed"
    log = failed[0]["attemptLog"]
    assert len(log) == attempts and all(a["statusCode"] == 500 for a in log)
    assert log[0]["response"] is None and log[0]["durationMs"] >= 0
    assert await deliveries(client, token, hook["id"], success="true") == []
    assert await deliveries(client, token, hook["id"], eventType="message.sent") == []
    assert len(await deliveries(client, token, hook["id"], eventType="webhook.test")) == 1
    assert await deliveries(client, token, hook["id"], since="2999-01-01T00:00:00Z") == []

    receiver.answer = lambda _r: (200, {}, b"ok")
    retried = await client.post(
        f"{SBX}/{hook['id']}/deliveries/{failed[0]['id']}/retry", headers=bearer(token)
    )
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    await eventually(lambda: len(receiver.delivered()) == 1)

    receiver.answer = lambda _r: (500, {}, b"")
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.requests) == attempts + 1 + 2 * attempts, timeout=15)
    await asyncio.sleep(0.2)
    receiver.answer = lambda _r: (200, {}, b"ok")
    replay = await client.post(
        f"{SBX}/{hook['id']}/deliveries/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=bearer(token),
    )
    assert replay.status_code == 202 and replay.json() == {"replayed": 2}
    await eventually(lambda: len(receiver.delivered()) == 3)
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 3  # one webhook-id per event, across every attempt


async def test_auto_disable_after_failing_period(
    data_dir: Any, sqlite_url: tuple[str, str | None], receiver: Receiver
) -> None:
    # Its own app only: a second app on the same database (the `app` fixture's) would
    # run a second dispatcher with the default disable period and take deliveries.
    settings = make_settings(
        data_dir,
        sqlite_url,
        webhooks={**FAST_WEBHOOKS, "disable_after_seconds": 0.5, "retry_schedule": [0.2] * 20},
    )
    from tests.support.users import create_test_user
    from tidings.app import create_app

    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        test_user = await create_test_user(application, "grace@example.com")
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            token = await login(http, test_user)
            receiver.answer = lambda _r: (500, {}, b"")
            hook = await create_hook(http, token, receiver.url)
            await http.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
            deadline = time.monotonic() + 8
            body: dict[str, Any] = {}
            while time.monotonic() < deadline:
                body = (await http.get(f"{SBX}/{hook['id']}", headers=bearer(token))).json()
                if body["status"] == "disabled":
                    break
                await asyncio.sleep(0.05)
            assert body["status"] == "disabled", body
            assert body["disabledReason"].startswith("Every attempt failed since")
            assert body["failingSince"] and body["disabledAt"]
            seen = len(receiver.requests)
            await asyncio.sleep(0.5)
            assert len(receiver.requests) == seen
            receiver.answer = lambda _r: (200, {}, b"ok")
            await http.patch(f"{SBX}/{hook['id']}", json={"enabled": True}, headers=bearer(token))
            await eventually(lambda: len(receiver.delivered()) == 1)


async def test_a_new_message_writes_its_first_event_only_for_a_subscriber(
    app: FastAPI, client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    async def outbox_types(message_id: str) -> list[str]:
        async with app.state.ctx.sessions() as session:
            found = await session.scalars(
                select(OutboxEvent.type).where(OutboxEvent.subject_id == message_id)
            )
            return sorted(found)

    body = {"to": "+393331234567", "body": "Hi"}
    before = await client.post(SMS, json=body, headers=bearer(token))
    assert before.json()["status"] == "sent"
    # No endpoint yet: its events had nowhere to go and were not written.
    assert await outbox_types(before.json()["id"]) == []

    hook = await create_hook(client, token, receiver.url, events=["message.queued"])
    after = await client.post(SMS, json=body, headers=bearer(token))
    assert await outbox_types(after.json()["id"]) == ["message.queued"]
    await eventually(lambda: len(receiver.delivered()) >= 1)
    [delivered] = receiver.verified(hook["secret"])
    assert (delivered["type"], delivered["data"]["id"]) == ("message.queued", after.json()["id"])
