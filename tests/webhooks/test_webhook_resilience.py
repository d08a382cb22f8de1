"""A receiver that refuses, then fails, then recovers gets every event, in order per
message, each under one webhook-id; leases survive a dead process; SSRF at delivery."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.support.users import TestUser, bearer, login
from tests.webhooks.hook_receiver import Receiver
from tests.webhooks.test_webhook_delivery import create_hook, eventually
from tidings.messages.models import OutboxEvent
from tidings.webhooks import ssrf
from tidings.webhooks.models import WebhookDelivery

ORDER = ["message.queued", "message.sent", "message.delivered"]


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_refused_then_500_then_back(
    app: FastAPI, client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    hook = await create_hook(client, token, receiver.url, events=["message.*"])
    await receiver.refuse()
    sent = [
        await client.post(
            "/sandbox/api/v4/sms/send",
            json={"to": f"+39333123456{i}", "body": f"n{i}"},
            headers={**bearer(token), "Prefer": "respond-async"},
        )
        for i in range(6)
    ]
    message_ids = {answer.json()["id"] for answer in sent}
    await asyncio.sleep(0.8)
    assert receiver.requests == []
    receiver.answer = lambda _r: (500, {}, b"down")
    await receiver.start()  # same port
    await eventually(lambda: len(receiver.requests) >= 6)
    await asyncio.sleep(0.4)
    receiver.answer = lambda _r: (200, {}, b"ok")
    await eventually(lambda: len(receiver.delivered()) >= 18, timeout=20)
    await asyncio.sleep(0.3)

    async with app.state.ctx.sessions() as session:
        events = list(
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.subject_id.in_(message_ids))
            )
        )
    assert len(events) == 18
    delivered = receiver.delivered()
    delivered_ids = [r.headers["webhook-id"] for r in delivered]
    assert sorted(delivered_ids) == sorted(e.id for e in events)  # none lost, none twice
    payloads = receiver.verified(hook["secret"])
    per_message: dict[str, list[str]] = {}
    for payload in payloads:
        per_message.setdefault(payload["data"]["id"], []).append(payload["type"])
    assert per_message == {message_id: ORDER for message_id in message_ids}
    # Every attempt of one event carried the same webhook-id and the same body.
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values())
    assert any(r.status == 500 for r in receiver.requests)


async def test_expired_lease_is_delivered_again(
    app: FastAPI, client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    """A process that died mid-delivery leaves a lease; when it runs out, another
    claim delivers the event (at least once)."""
    hook = await create_hook(client, token, receiver.url)
    ctx = app.state.ctx
    await ctx.runtime.webhook_dispatcher.stop()  # this process stops delivering
    await asyncio.sleep(0.3)
    tested = await client.post(f"/sandbox/api/v4/webhooks/{hook['id']}/test", headers=bearer(token))
    delivery_id = tested.json()["id"]
    past = ctx.clock.now() - timedelta(seconds=1)

    async def dead_lease(session: Any) -> None:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(lease_owner="dead-host:1:abc:1", attempts=1, next_attempt_at=past)
        )

    await ctx.runtime.writer.submit(dead_lease)
    from tidings.webhooks.dispatcher import WebhookDispatcher

    other = WebhookDispatcher(
        writer=ctx.runtime.writer,
        clock=ctx.clock,
        settings=ctx.settings.webhooks,
        secret_box=ctx.key_ring,
    )
    task = asyncio.create_task(other.run())
    try:
        await eventually(lambda: len(receiver.delivered()) == 1)
    finally:
        await other.stop()
        await task
    assert receiver.verified(hook["secret"])[0]["type"] == "webhook.test"


async def test_rebinding_is_checked_at_delivery(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A production name that resolved to a public address at create but resolves
    to loopback at delivery is not connected to."""
    token = await login(client, user, base="")
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])

    async def resolve(host: str, port: int) -> list[ssrf.IpAddress]:
        return [ipaddress.ip_address(a) for a in next(answers, ["127.0.0.1"])]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    created = await client.post(
        "/api/v4/webhooks/create",
        json={"url": f"https://rebind.example.com:{receiver.port}/hook"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    await client.post(f"/api/v4/webhooks/{hook}/test", headers=bearer(token))

    async def last_error() -> str | None:
        answer = await client.get(f"/api/v4/webhooks/{hook}/deliveries", headers=bearer(token))
        return answer.json()["data"][0]["lastError"]  # type: ignore[no-any-return]

    for _ in range(100):
        if await last_error():
            break
        await asyncio.sleep(0.05)
    assert (await last_error() or "").startswith("unsafe_webhook_url")
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("address", "blocked_private", "blocked_always"),
    [
        ("127.0.0.1", True, False),
        ("10.0.0.1", True, False),
        ("172.16.5.4", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),
        ("169.254.1.1", True, False),
        ("169.254.169.254", True, True),
        ("fd00:ec2::254", True, True),
        ("::1", True, False),
        ("::ffff:127.0.0.1", True, False),
        ("::ffff:169.254.169.254", True, True),
        ("64:ff9b::7f00:1", True, False),
        ("fe80::1", True, False),
        ("fc00::1", True, False),
        ("0.0.0.0", True, True),
        ("::", True, True),
        ("224.0.0.1", True, True),
        ("ff02::1", True, True),
        ("240.0.0.1", True, False),
        ("93.184.215.14", False, False),
        ("2606:4700::1111", False, False),
    ],
)
def test_address_policy(address: str, blocked_private: bool, blocked_always: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert (ssrf.refusal(ip, allow_private=False) is not None) == blocked_private
    assert (ssrf.refusal(ip, allow_private=True) is not None) == blocked_always
