"""What the provider tests share: compressed timings, a production account that can
pay for its messages, sending through the API, and reading /metrics and the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from tests.fakes.secretive import SECRETIVE
from tests.support.databases import migrate_to_head
from tests.support.users import TestUser, bearer, login
from tidings.app import create_app
from tidings.core.clock import Clock
from tidings.credits.repository import CreditRepository
from tidings.messages.models import Message, MessageEvent
from tidings.providers.registry import KindRegistry, default_kinds
from tidings.settings import Settings

# Settings overrides: retries, circuits, deadlines and the inbox in fractions of a second.
FAST: dict[str, Any] = {
    "delivery": {
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "poll_interval_seconds": 0.1,
        # Long enough that a loaded machine never turns a slow answer into a second
        # attempt (tests count attempts); the deadline's own test sets a short one.
        "send_timeout_seconds": 5.0,
        "shutdown_grace_seconds": 0.5,
        "max_attempts": 4,
    },
    "sandbox": {"receipt_delay_seconds": 0.01, "recovery_interval_seconds": 0.5},
    "providers": {
        "circuit_failures": 2,
        "circuit_window_seconds": 30.0,
        "circuit_open_seconds": 1.5,
        "unmatched_wait_seconds": 0.3,
        "inbox_poll_seconds": 0.1,
    },
}

ORDINARY = "+393331234567"
FINAL = {"delivered", "read", "failed", "undelivered", "canceled"}


def with_overrides(base: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """``FAST`` with some values of some sections changed."""
    merged = {name: dict(values) for name, values in base.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return merged


def kinds_for_tests() -> KindRegistry:
    """Every real kind, and the test kinds of :mod:`tests.fakes`."""
    kinds = default_kinds()
    kinds.register(SECRETIVE)
    return kinds


@asynccontextmanager
async def app_running(
    settings: Settings, *, kinds: KindRegistry | None = None, clock: Clock | None = None
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, kinds=kinds or kinds_for_tests(), clock=clock)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        yield application


def http(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def top_up(app: FastAPI, account_id: str, amount: int = 10_000) -> None:
    async with app.state.ctx.sessions() as session:
        await CreditRepository(session).add(
            account_id, Decimal(amount), reason="top-up", at=datetime.now(UTC)
        )
        await session.commit()


async def production_token(app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> str:
    """A production token for an account with credits to spend."""
    await top_up(app, user.account_id)
    return await login(client, user, base="")


async def send(
    client: httpx.AsyncClient,
    token: str,
    to: str = ORDINARY,
    *,
    channel: str = "sms",
    wait: bool = False,
    body: str = "hello",
) -> dict[str, Any]:
    """Send one production message; its answer (at once unless ``wait``)."""
    headers = bearer(token)
    if not wait:
        headers["Prefer"] = "respond-async"
    if channel == "sms":
        path, payload = "/api/v4/sms/send", {"to": to, "body": body}
    elif channel == "whatsapp":
        path, payload = f"/api/v4/whatsapp/chats/{to}/message", {"body": body}
    else:
        path = "/api/v4/email/send"
        payload = {"to": to, "from": "ada@example.com", "subject": "Hi", "text": body}
    answer = await client.post(path, json=payload, headers=headers)
    assert answer.status_code in (200, 202), answer.text
    return dict(answer.json())


async def read(client: httpx.AsyncClient, token: str, message_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v4/messages/{message_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def provider(client: httpx.AsyncClient, token: str, provider_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v4/providers/{provider_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    """Poll ``check`` until it holds (bounded; at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.03)


async def circuit_state(client: httpx.AsyncClient, provider_id: str) -> float | None:
    """``tidings_provider_circuit_state`` of one provider from /metrics (None: absent)."""
    text = (await client.get("/metrics")).text
    prefix = f'tidings_provider_circuit_state{{provider="{provider_id}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return None


async def events(app: FastAPI, message_id: str, kind: str | None = None) -> list[MessageEvent]:
    """A message's event rows (with their detail, which answers leave out), oldest first."""
    query = select(MessageEvent).where(MessageEvent.message_id == message_id)
    if kind is not None:
        query = query.where(MessageEvent.kind == kind)
    async with app.state.ctx.sessions() as session:
        return list(await session.scalars(query.order_by(MessageEvent.id)))


async def between_attempts(app: FastAPI, message_id: str) -> Message:
    """A message's row once no dispatcher holds it: its ``attempts`` then count the
    attempts used (a leased row counts the one under way)."""
    found: list[Message] = []

    async def released() -> bool:
        async with app.state.ctx.sessions() as session:
            row = await session.get(Message, message_id)
        assert row is not None
        found[:] = [row]
        return row.lease_owner is None

    await eventually(released, f"{message_id} is between attempts")
    return found[0]


def applied(message: dict[str, Any]) -> list[str]:
    return [event["status"] for event in message["events"] if event["applied"]]
