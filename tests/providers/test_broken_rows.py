"""A provider whose secret cannot be opened, and one whose stored config no longer
validates, each fail alone: that provider is ``failing`` with a clear ``lastError``
(and listed by ``/readyz``), its messages go to another provider of the channel or wait
without using an attempt, and every other provider, account and webhook endpoint keeps
working (a receiver on loopback gets the other messages' events).

The webhook endpoints are the sandbox's: production endpoints must be ``https://``, and
the webhook sender takes no test CA; the sandbox's share the fan-out and the dispatcher
with production's, which is what a broken provider must not stop."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import make_settings
from tests.fakes.secretive import GOOD_KEY
from tests.providers.helpers import (
    FAST,
    app_running,
    between_attempts,
    eventually,
    production_token,
    provider,
    send,
    with_overrides,
)
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user, login
from tests.webhooks.hook_receiver import Receiver
from tidings.providers.models import ProviderRow
from tidings.settings import Settings

# Sealed under the ring's own key id, but not a token that opens (a corrupt row).
CORRUPT = "enc:v2:test:gAAAAABcorrupted"


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    timings = with_overrides(
        FAST,
        webhooks={
            "retry_schedule": [0.2, 0.3, 0.4],
            "poll_interval_seconds": 0.1,
            "timeout_seconds": 2.0,
            # The receiver listens on loopback.
            "allow_private_in_sandbox": True,
        },
    )
    return make_settings(data_dir, sqlite_url, **timings)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings) as application:
        yield application


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


async def _store(app: FastAPI, provider_id: str, **values: Any) -> None:
    """Write a provider's row directly, as a bad migration or a lost key would."""
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(ProviderRow)
            .where(ProviderRow.id == provider_id)
            .values(updated_at=datetime.now(UTC), **values)
        )
        await session.commit()


async def _hook(client: httpx.AsyncClient, token: str, url: str) -> None:
    answer = await client.post(
        "/sandbox/api/v4/webhooks/create",
        json={"url": url, "events": ["message.*"]},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text


def _events_for(receiver: Receiver, message_id: str) -> list[dict[str, Any]]:
    found = []
    for request in receiver.delivered():
        body = request.json()
        data = body.get("data") or {}
        if data.get("id") == message_id:
            found.append(body)
    return found


async def test_unopenable_secret_and_invalid_config_fail_alone(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    ada = await production_token(app, client, user)
    bob_user = await create_test_user(app, "bob@example.com")
    bob = await production_token(app, client, bob_user)
    sandboxes = [await login(client, u) for u in (user, bob_user)]
    for name, token in zip(("ada", "bob"), sandboxes, strict=True):
        await _hook(client, token, f"{receiver.url}/{name}")

    # Ada's SMS: a keyed provider whose sealed key is corrupt, and a spare.
    sealed = await add_provider(
        app,
        user.account_id,
        "sms",
        "secretive",
        config={"apiKey": GOOD_KEY + secrets.token_hex(8)},
        priority=1,
    )
    spare = await add_provider(app, user.account_id, "sms", priority=2)
    await _store(app, sealed, secrets={"apiKey": CORRUPT})
    # Ada's WhatsApp: one provider, whose stored config is no longer valid.
    invalid = await add_provider(app, user.account_id, "whatsapp")
    await _store(app, invalid, config={"scenario": 42, "colour": "red"})
    # Bob's SMS: untouched.
    bobs = await add_provider(app, bob_user.account_id, "sms")

    sms = [await send(client, ada) for _ in range(3)]
    waiting = await send(client, ada, channel="whatsapp")
    others = [await send(client, bob) for _ in range(3)]

    for message in sms:
        done = await wait_for(client, ada, message["id"], {"delivered"}, base="")
        # Moved on to the spare without using an attempt on the broken one.
        assert (done["providerId"], done["attempts"]) == (spare, 1)
    for message in others:
        done = await wait_for(client, bob, message["id"], {"delivered"}, base="")
        assert done["providerId"] == bobs

    shown = await provider(client, ada, sealed)
    assert shown["health"] == "failing"
    assert shown["lastError"]["code"] == "invalid_config"
    assert "secret cannot be opened" in shown["lastError"]["message"]
    assert shown["config"]["apiKey"] == "********"

    async def invalid_failing() -> bool:
        return bool((await provider(client, ada, invalid))["health"] == "failing")

    await eventually(invalid_failing, "the provider with an invalid config is failing")
    shown = await provider(client, ada, invalid)
    assert "config is not valid" in shown["lastError"]["message"]
    assert "config.scenario" in shown["lastError"]["message"]
    assert "config.colour" in shown["lastError"]["message"]
    held = await between_attempts(app, waiting["id"])
    assert (held.status, held.attempts) == ("queued", 0)

    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert {entry["id"] for entry in ready["providers"]["failing"]} == {sealed, invalid}

    # While those providers fail, both accounts' webhook endpoints get their events.
    told = []
    for token in sandboxes:
        answer = await client.post(
            "/sandbox/api/v4/sms/send",
            json={"to": "+393331234567", "body": "hi"},
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
        told.append(answer.json()["id"])

    async def all_told() -> bool:
        return all(
            any(e["type"] == "message.delivered" for e in _events_for(receiver, message_id))
            for message_id in told
        )

    await eventually(all_told, "the webhook endpoints got every delivery")
    assert {r.path for r in receiver.delivered()} >= {"/hook/ada", "/hook/bob"}

    # The secret cannot be kept through a change: the operator sends it again.
    kept = await client.patch(
        f"/api/v4/providers/{sealed}",
        json={"config": {"scenario": "normal"}},
        headers=bearer(ada),
    )
    assert kept.status_code == 422 and kept.json()["code"] == "secret_unavailable"
    renewed = await client.patch(
        f"/api/v4/providers/{sealed}",
        json={"config": {"apiKey": GOOD_KEY + secrets.token_hex(8)}},
        headers=bearer(ada),
    )
    assert renewed.status_code == 200, renewed.text
    again = await send(client, ada, wait=True)
    assert again["providerId"] == sealed
    # The config fixed (the bad field given anew; the one the kind does not know is
    # dropped): the waiting message goes, its first attempt.
    fixed = await client.patch(
        f"/api/v4/providers/{invalid}",
        json={"config": {"scenario": "normal"}},
        headers=bearer(ada),
    )
    assert fixed.status_code == 200, fixed.text
    done = await wait_for(client, ada, waiting["id"], {"read"}, base="")
    assert (done["providerId"], done["attempts"]) == (invalid, 1)
    assert (await provider(client, ada, invalid))["health"] == "ok"
