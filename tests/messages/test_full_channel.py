"""Messages left due while their channel is at its concurrency limit go as soon as a
slot frees, not at the next poll.

A claim made while a channel is full looks at the other channels only; finding none
due there, it used to leave the rows of the full channel to the poll. Here the poll
is a minute away and the provider sends no receipts (whose arrival would wake the
dispatcher): the first two sends hold the SMS channel's two slots until the test lets
them go, and the other eight must then follow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.providers.helpers import app_running, http, production_token, send
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, create_test_user
from tidings.providers.base import Accepted, OutboundMessage, ProviderDeps
from tidings.providers.registry import (
    CHANNELS,
    KindConfig,
    KindRegistry,
    KindSpec,
    ProviderIdentity,
)
from tidings.providers.simulator import SIMULATOR


class Gate:
    """A provider that takes each message once the test opens its gate."""

    opened = asyncio.Event()

    def __init__(self, identity: ProviderIdentity, config: KindConfig, deps: ProviderDeps) -> None:
        self.id, self.channel, self.kind = identity.id, identity.channel, "gate"

    async def send(self, message: OutboundMessage) -> Accepted:
        await Gate.opened.wait()
        return Accepted.one(f"gate.{message.id}")

    async def check(self) -> str:
        return "gated"

    async def close(self) -> None:
        return None


GATE = KindSpec(
    kind="gate",
    channels=frozenset(CHANNELS),
    config=KindConfig,
    build=Gate,
    parse_report=lambda payload: [],
    summary="Takes messages once opened.",
)


@pytest.fixture
async def app(data_dir: Path, sqlite_url: tuple[str, str | None]) -> AsyncIterator[FastAPI]:
    Gate.opened = asyncio.Event()
    delivery = {
        "backoff_base_seconds": 0.05,
        "poll_interval_seconds": 60,
        "sms_concurrency": 2,
        "whatsapp_concurrency": 1,
        "email_concurrency": 1,
        "sends_first": False,
    }
    settings = make_settings(data_dir, sqlite_url, delivery=delivery)
    async with app_running(settings, kinds=KindRegistry([SIMULATOR, GATE])) as application:
        yield application


async def test_rows_left_while_the_channel_was_full_go_when_a_slot_frees(app: FastAPI) -> None:
    user: TestUser = await create_test_user(app)
    await add_provider(app, user.account_id, "sms", "gate")
    async with http(app) as client:
        token = await production_token(app, client, user)
        sent = [await send(client, token, body=f"hello {n}") for n in range(10)]
        dispatcher = app.state.ctx.runtime.dispatcher
        # Two handed over and held at the gate; the rest stored, due, for a claim.
        assert dispatcher.adoptions == 2
        # The claims the sends woke found the channel full: let them settle.
        for _ in range(20):
            await asyncio.sleep(0.01)
        Gate.opened.set()
        for message in sent:
            await wait_for(client, token, message["id"], {"sent"}, base="", timeout=15)
