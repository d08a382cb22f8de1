"""The connection pool on a real relay: a connection the relay dropped while idle is
replaced without spending an attempt, one dropped in the middle of a message is
retried without losing or doubling it, and idle connections are closed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import eventually
from tests.providers.smtp.conftest import relay_config
from tests.providers.smtp.test_send import send_email
from tests.support.messages import wait_for
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.transport import SmtpPool


@pytest.fixture(params=[True, False], ids=["pipelined", "one-at-a-time"])
def relay_pipelining(request: pytest.FixtureRequest) -> bool:
    """Every case here with a relay that offers PIPELINING and with one that does not."""
    return bool(request.param)


async def test_a_connection_closed_while_idle_is_replaced(
    client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    first = await send_email(client, ready["token"])
    await wait_for(client, ready["token"], first["id"], {"sent"}, base="")
    relay.drop_connections()
    second = await send_email(client, ready["token"], to="again@example.org")
    done = await wait_for(client, ready["token"], second["id"], {"sent"}, base="")
    assert done["attempts"] == 1
    assert relay.connections == 2
    assert [item.rcpt_tos for item in await relay.wait_for(2)] == [
        ["bob@example.org"],
        ["again@example.org"],
    ]


async def test_a_connection_dropped_mid_message_is_retried_once(
    client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    sent = await send_email(client, ready["token"], to="drop-once@example.org")
    done = await wait_for(client, ready["token"], sent["id"], {"sent"}, base="")
    assert done["attempts"] == 2
    assert relay.dropped
    copies = [item for item in await relay.wait_for(1) if "drop-once@example.org" in item.rcpt_tos]
    assert len(copies) == 1


async def test_idle_connections_are_closed(app: FastAPI, relay: FakeRelay) -> None:
    config = SmtpConfig.model_validate(relay_config(relay))
    pool = SmtpPool(config, size=2, idle_seconds=0.2)
    try:
        async with pool.connection() as conn:
            assert (await conn.session.command(b"NOOP\r\n")).ok
        assert pool.idle == 1

        async def closed() -> bool:
            return pool.idle == 0 and relay.open_connections == 0

        await eventually(closed, "the idle connection is closed")
        async with pool.connection() as conn:
            assert (await conn.session.command(b"NOOP\r\n")).ok
        assert pool.opened == 2
    finally:
        await pool.close()
    assert pool.idle == 0
