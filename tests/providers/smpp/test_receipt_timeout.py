"""An SMS asked for a receipt that does not come says so after the provider's
``receiptTimeoutSeconds``, and stays ``sent``: against the fake SMSC withholding
its receipts (``hold_receipts``: kept until the ESME binds again), through the
API, with the sweep the application runs under its supervisor. A receipt that
comes after the timeout still delivers the message and clears the error; a
message is never marked twice; a provider that asks for no receipts, or a
message already delivered, is left alone; the timeout that passed while no process
ran is found by the next one (the sweep is a query, not a timer). On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.fakes.smsc import PASSWORD, SYSTEM_ID, DeliveryReceiptSMSC, FakeSMSC, HappySMSC
from tests.providers.helpers import FAST, app_running, eventually, http, production_token
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user
from tidings.core.clock import FrozenClock
from tidings.messages.models import MessageEvent
from tidings.providers.registry import KindRegistry
from tidings.providers.simulator import SIMULATOR
from tidings.providers.smpp import SMPP
from tidings.receipt_timeouts import RECEIPT_TIMEOUT, awaiting_receipts, sweep_provider
from tidings.settings import Settings

# Short enough for a test; the sweep looks every quarter of it (and every second).
TIMEOUT = 0.5


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, database_url, **FAST)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=KindRegistry([SIMULATOR, SMPP])) as application:
        yield application


def smpp_config(smsc: FakeSMSC, **values: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": smsc.port,
        "systemId": SYSTEM_ID,
        "password": PASSWORD,
        "defaultSender": "Tidings",
        "receiptTimeoutSeconds": TIMEOUT,
        **values,
    }


async def send_sms(client: httpx.AsyncClient, token: str, body: str) -> str:
    headers = {**bearer(token), "Prefer": "respond-async"}
    answer = await client.post(
        "/api/v4/sms/send", json={"to": "+393331234567", "body": body}, headers=headers
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def message(client: httpx.AsyncClient, token: str, message_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v4/messages/{message_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def timeout_events(app: FastAPI, message_id: str) -> int:
    async with app.state.ctx.sessions() as session:
        query = select(func.count()).where(
            MessageEvent.message_id == message_id, MessageEvent.kind == RECEIPT_TIMEOUT
        )
        return int(await session.scalar(query) or 0)


async def sweep(app: FastAPI, provider_id: str) -> int:
    """One sweep of one provider now, as the application's loop runs it."""
    ctx = app.state.ctx
    return int(await sweep_provider(ctx.runtime.writer, ctx.clock, provider_id, TIMEOUT))


async def test_no_receipt_in_time_says_so_and_a_late_one_still_delivers(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with HappySMSC(receipts="both", hold_receipts=True) as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)
        message_id = await send_sms(client, token, "Will its receipt come?")
        await wait_for(client, token, message_id, {"sent"}, base="")
        await eventually(
            lambda: _has_timeout(client, token, message_id), "the receipt_timeout event"
        )

        shown = await message(client, token, message_id)
        assert shown["status"] == "sent"
        assert shown["error"]["code"] == "receipt_timeout"
        assert "0.5 s" in shown["error"]["message"]
        [event] = [e for e in shown["events"] if e["event"] == "receipt_timeout"]
        assert event["status"] == "sent"
        assert event["applied"] is False
        # Swept again: nothing more to mark, and the message has its one event.
        assert await sweep(app, provider_id) == 0
        assert await timeout_events(app, message_id) == 1
        report = await client.get(f"/api/v4/sms/reports/{message_id}", headers=bearer(token))
        assert report.json()["error"]["code"] == "receipt_timeout"

        # The SMSC hands the receipt it kept to the next bind.
        assert len(smsc.held) == 1
        smsc.drop()
        done = await wait_for(client, token, message_id, {"delivered"}, base="")
    assert done["error"] is None
    kinds = [(e["status"], e["event"]) for e in done["events"]]
    assert kinds.index(("sent", "receipt_timeout")) < kinds.index(("delivered", None))


async def _has_timeout(client: httpx.AsyncClient, token: str, message_id: str) -> bool:
    shown = await message(client, token, message_id)
    return any(event["event"] == RECEIPT_TIMEOUT for event in shown["events"])


async def test_providers_without_receipts_and_delivered_messages_are_left_alone(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("tlv") as receipting, HappySMSC() as silent:
        asking = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(receipting)
        )
        not_asking = await add_provider(
            app,
            user.account_id,
            "sms",
            "smpp",
            config=smpp_config(silent, registeredDelivery=False),
            priority=2,
        )
        token = await production_token(app, client, user)
        message_id = await send_sms(client, token, "Delivered at once")
        done = await wait_for(client, token, message_id, {"delivered"}, base="")
        assert done["providerId"] == asking

        ctx = app.state.ctx
        waiting = await awaiting_receipts(ctx.sessions, ctx.runtime.providers.kinds)
        assert waiting == {asking: TIMEOUT}
        assert not_asking not in waiting
        assert await sweep(app, asking) == 0
        assert await timeout_events(app, message_id) == 0


async def test_a_timeout_that_passed_while_nothing_ran_is_found_after_a_restart(
    settings: Settings,
) -> None:
    kinds = KindRegistry([SIMULATOR, SMPP])
    async with HappySMSC(receipts="both", hold_receipts=True) as smsc:
        async with app_running(settings, kinds=kinds) as first, http(first) as client:
            user = await create_test_user(first)
            config = smpp_config(smsc, receiptTimeoutSeconds=3600)
            await add_provider(first, user.account_id, "sms", "smpp", config=config)
            token = await production_token(first, client, user)
            message_id = await send_sms(client, token, "Sent before the stop")
            await wait_for(client, token, message_id, {"sent"}, base="")
            assert await timeout_events(first, message_id) == 0
        # Two hours later (the clock of the next process says so), another process.
        later = FrozenClock(datetime.now(UTC) + timedelta(hours=2))
        async with app_running(settings, kinds=kinds, clock=later) as second:
            await eventually(
                lambda: _marked(second, message_id), "the receipt_timeout event after a restart"
            )


async def _marked(app: FastAPI, message_id: str) -> bool:
    return await timeout_events(app, message_id) == 1
