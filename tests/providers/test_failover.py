"""Failover between two ``simulator`` providers of one channel, the first made to fail
(``{"scenario": "unavailable"}``): messages go through the second, each records the
provider that took it, the first's circuit opens (``/metrics``, ``health``), a probe
after ``circuit_open_seconds`` finds it still broken and opens it again, and once its
config is fixed it takes messages again with its circuit closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import make_settings
from tests.providers.helpers import (
    FAST,
    app_running,
    applied,
    circuit_state,
    events,
    eventually,
    production_token,
    provider,
    send,
    with_overrides,
)
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer
from tidings.providers.models import ProviderRow
from tidings.settings import Settings

OPEN, HALF_OPEN, CLOSED = 2.0, 1.0, 0.0


def _sample(text: str, name: str, provider_id: str, outcome: str | None = None) -> float:
    """One sample of /metrics: ``name`` for one provider (and outcome)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") or f'provider="{provider_id}"' not in line:
            continue
        if outcome is None or f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for {provider_id} {outcome or ''} in /metrics")


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    # Open long enough to be seen open, short enough to wait for the probe.
    timings = with_overrides(FAST, providers={"circuit_open_seconds": 4.0})
    return make_settings(data_dir, sqlite_url, **timings)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings) as application:
        yield application


async def test_failover_opens_and_closes_the_circuit(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    broken = await add_provider(
        app, user.account_id, "sms", config={"scenario": "unavailable"}, priority=1
    )
    spare = await add_provider(app, user.account_id, "sms", priority=2)
    token = await production_token(app, client, user)

    # circuit_failures is 2: the first two messages each meet the broken provider
    # once, then go to the spare; after that the open circuit sends them straight on.
    first = [await send(client, token) for _ in range(2)]
    for sent in first:
        done = await wait_for(client, token, sent["id"], {"delivered"}, base="")
        assert done["providerId"] == spare
        assert done["attempts"] == 2
        retries = await events(app, sent["id"], "retry")
        assert [event.detail["providerId"] for event in retries] == [broken]
        assert retries[0].detail["error"]["code"] == "provider_unavailable"
    assert await circuit_state(client, broken) == OPEN
    metrics = (await client.get("/metrics")).text
    assert (
        _sample(metrics, "tidings_provider_submissions_total", broken, "provider_unavailable") == 2
    )
    assert _sample(metrics, "tidings_provider_submissions_total", spare, "accepted") == 2
    assert _sample(metrics, "tidings_provider_send_duration_seconds_count", spare) == 2
    seen = await provider(client, token, broken)
    assert seen["health"] == "failing"
    assert seen["lastError"]["code"] == "provider_unavailable"
    assert (await provider(client, token, spare))["health"] == "ok"

    later = [await send(client, token) for _ in range(3)]
    for sent in later:
        done = await wait_for(client, token, sent["id"], {"delivered"}, base="")
        assert (done["providerId"], done["attempts"]) == (spare, 1)
        assert await events(app, sent["id"], "retry") == []
        assert applied(done) == ["queued", "sent", "delivered"]

    # After circuit_open_seconds one message probes the broken provider: it fails
    # again, the circuit opens again, and the message still goes through the spare.
    async def half_open() -> bool:
        return await circuit_state(client, broken) == HALF_OPEN

    await eventually(half_open, "the circuit half-opens after circuit_open_seconds")
    probe = await send(client, token)
    done = await wait_for(client, token, probe["id"], {"delivered"}, base="")
    assert (done["providerId"], done["attempts"]) == (spare, 2)
    assert [e.detail["providerId"] for e in await events(app, probe["id"], "retry")] == [broken]
    assert await circuit_state(client, broken) == OPEN

    # Fixed: the provider is judged afresh and takes the next messages itself.
    fixed = await client.patch(
        f"/api/v4/providers/{broken}",
        json={"config": {"scenario": "normal"}},
        headers=bearer(token),
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["health"] == "unknown"
    after = await send(client, token)
    done = await wait_for(client, token, after["id"], {"delivered"}, base="")
    assert (done["providerId"], done["attempts"]) == (broken, 1)
    assert await circuit_state(client, broken) == CLOSED
    healthy = await provider(client, token, broken)
    assert (healthy["health"], healthy["lastError"]) == ("ok", None)


async def _store_config(app: FastAPI, provider_id: str, config: dict[str, object]) -> None:
    """Change a provider's row behind this process's back (another process's change)."""
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(ProviderRow)
            .where(ProviderRow.id == provider_id)
            .values(config=config, updated_at=datetime.now(UTC))
        )
        await session.commit()


async def test_a_probe_that_finds_the_provider_unusable_is_not_lost(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    broken = await add_provider(
        app, user.account_id, "sms", config={"scenario": "unavailable"}, priority=1
    )
    spare = await add_provider(app, user.account_id, "sms", priority=2)
    token = await production_token(app, client, user)
    for _ in range(2):
        sent = await send(client, token)
        await wait_for(client, token, sent["id"], {"delivered"}, base="")
    assert await circuit_state(client, broken) == OPEN

    # While its circuit is open, its stored config stops validating (changed by
    # another process, say): the half-open probe finds no provider to try.
    await _store_config(app, broken, {"scenario": "on-fire"})

    async def half_open() -> bool:
        return await circuit_state(client, broken) == HALF_OPEN

    await eventually(half_open, "the circuit half-opens")
    probe = await send(client, token)
    done = await wait_for(client, token, probe["id"], {"delivered"}, base="")
    assert done["providerId"] == spare

    # Fixed, the same way: a later message probes it again, and it takes messages.
    await _store_config(app, broken, {"scenario": "normal"})
    taken: list[str] = []

    async def back() -> bool:
        sent = await send(client, token)
        done = await wait_for(client, token, sent["id"], {"delivered"}, base="")
        taken.append(done["providerId"])
        return bool(done["providerId"] == broken)

    await eventually(back, "the fixed provider takes messages again", timeout=20)
    assert await circuit_state(client, broken) == CLOSED
