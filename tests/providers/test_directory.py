"""The directory builds a provider once however many messages ask at once, closes a
replaced one, and reports a provider it cannot build as failing without touching the
others; the circuit breaker opens, probes and closes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.providers import add_provider
from tests.support.users import TestUser
from tidings.app import create_app
from tidings.core.environments import Environment
from tidings.providers.base import Accepted, OutboundMessage, ProviderDeps
from tidings.providers.circuit import CircuitBreaker, CircuitState
from tidings.providers.directory import Choice, NoProvider
from tidings.providers.models import ProviderRow
from tidings.providers.registry import (
    CHANNELS,
    KindConfig,
    KindRegistry,
    KindSpec,
    ProviderIdentity,
)
from tidings.providers.simulator import SIMULATOR


class Counting:
    """A kind whose builds and closes are counted (what a leaked SMPP bind would be)."""

    built = 0
    closed = 0

    def __init__(self, identity: ProviderIdentity, config: KindConfig, deps: ProviderDeps) -> None:
        Counting.built += 1
        self.id, self.channel, self.kind = identity.id, identity.channel, "counting"

    async def send(self, message: OutboundMessage) -> Accepted:
        return Accepted.one(f"c.{message.id}")

    async def check(self) -> str:
        return "counted"

    async def close(self) -> None:
        Counting.closed += 1


class CountingConfig(KindConfig):
    label: str = "one"


COUNTING = KindSpec(
    kind="counting",
    channels=frozenset(CHANNELS),
    config=CountingConfig,
    build=Counting,
    parse_report=lambda payload: [],
    summary="Counts its builds.",
)


@pytest.fixture
def kinds() -> KindRegistry:
    Counting.built = Counting.closed = 0
    return KindRegistry([SIMULATOR, COUNTING])


@pytest.fixture
async def app(data_dir: Path, sqlite_url: tuple[str, str | None], kinds: KindRegistry) -> Any:
    settings = make_settings(data_dir, sqlite_url, providers={"retire_grace_seconds": 0.01})
    application = create_app(settings, kinds=kinds)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        yield application


async def test_concurrent_first_uses_build_one_provider(app: FastAPI, user: TestUser) -> None:
    await add_provider(app, user.account_id, "sms", "counting")
    directory = app.state.ctx.runtime.providers
    choices = await asyncio.gather(
        *(directory.choose(user.account_id, Environment.PRODUCTION, "sms") for _ in range(50))
    )
    assert all(isinstance(choice, Choice) for choice in choices)
    assert Counting.built == 1
    assert len({id(choice.provider) for choice in choices if isinstance(choice, Choice)}) == 1


@contextmanager
def statements_of_providers(app: FastAPI, *marks: str) -> Iterator[list[str]]:
    """The statements run meanwhile that read ``providers`` and hold every mark."""
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM providers" in statement and all(mark in statement for mark in marks):
            reads.append(statement)

    engine = app.state.ctx.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_concurrent_asks_share_one_read_of_the_routes(app: FastAPI, user: TestUser) -> None:
    await add_provider(app, user.account_id, "sms", "counting")
    directory = app.state.ctx.runtime.providers
    # The routes' query (others read the table too: the persistent providers' start).
    with statements_of_providers(app, "ORDER BY providers.priority") as reads:
        asks = [directory.routes(user.account_id, Environment.PRODUCTION, "sms") for _ in range(50)]
        routes = await asyncio.gather(*asks)
        assert len(reads) == 1
        assert all(len(found) == 1 for found in routes)
        # Cached now; a change here makes the next ask read again.
        await directory.routes(user.account_id, Environment.PRODUCTION, "sms")
        assert len(reads) == 1
        directory.changed(user.account_id, Environment.PRODUCTION, "sms")
        await directory.routes(user.account_id, Environment.PRODUCTION, "sms")
        assert len(reads) == 2


async def test_the_inbox_reads_a_providers_report_source_once(app: FastAPI, user: TestUser) -> None:
    provider_id = await add_provider(app, user.account_id, "sms", "counting")
    directory = app.state.ctx.runtime.providers
    with statements_of_providers(app, "WHERE providers.id") as reads:
        sources = [await directory.source(provider_id) for _ in range(20)]
        assert len(reads) == 1
        assert {(s.kind, s.account_id, s.environment) for s in sources if s is not None} == {
            ("counting", user.account_id, Environment.PRODUCTION)
        }
        # An unknown provider is asked for each time (it may be one being added).
        assert await directory.source("prv_unknown") is None
        assert await directory.source("prv_unknown") is None
        assert len(reads) == 3


async def test_a_changed_provider_is_rebuilt_and_the_old_one_closed(
    app: FastAPI, user: TestUser
) -> None:
    provider_id = await add_provider(app, user.account_id, "sms", "counting")
    runtime = app.state.ctx.runtime
    first = await runtime.providers.choose(user.account_id, Environment.PRODUCTION, "sms")
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(ProviderRow)
            .where(ProviderRow.id == provider_id)
            .values(config={"label": "two"}, updated_at=datetime.now(UTC) + timedelta(seconds=1))
        )
        await session.commit()
    runtime.providers.changed(user.account_id, Environment.PRODUCTION, "sms")
    second = await runtime.providers.choose(user.account_id, Environment.PRODUCTION, "sms")
    assert isinstance(first, Choice) and isinstance(second, Choice)
    assert first.provider is not second.provider
    assert Counting.built == 2
    for _ in range(100):
        if Counting.closed:
            break
        await asyncio.sleep(0.01)
    assert Counting.closed == 1


async def test_an_unbuildable_provider_is_failing_alone(app: FastAPI, user: TestUser) -> None:
    broken = await add_provider(app, user.account_id, "sms", "counting", priority=1)
    healthy = await add_provider(app, user.account_id, "sms", "counting", priority=2)
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(ProviderRow).where(ProviderRow.id == broken).values(config={"label": 7})
        )
        await session.commit()
    directory = app.state.ctx.runtime.providers
    directory.changed(user.account_id, Environment.PRODUCTION, "sms")
    choice = await directory.choose(user.account_id, Environment.PRODUCTION, "sms")
    assert isinstance(choice, Choice) and choice.route.id == healthy
    async with app.state.ctx.sessions() as session:
        row = await session.get(ProviderRow, broken)
    assert row is not None and row.health == "failing"
    assert row.last_error is not None and "config.label" in row.last_error["message"]

    # With the healthy one disabled, the message waits, saying why.
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(ProviderRow).where(ProviderRow.id == healthy).values(enabled=False)
        )
        await session.commit()
    directory.changed(user.account_id, Environment.PRODUCTION, "sms")
    waiting = await directory.choose(user.account_id, Environment.PRODUCTION, "sms")
    assert isinstance(waiting, NoProvider)
    assert "stored config is not valid" in waiting.reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_with(clock: Clock, **settings: float) -> CircuitBreaker:
    breaker = CircuitBreaker(**settings)  # type: ignore[arg-type]
    breaker._now = clock  # type: ignore[method-assign]
    return breaker


def test_the_circuit_opens_probes_once_and_closes() -> None:
    clock = Clock()
    breaker = breaker_with(clock, failure_threshold=3, window_seconds=10, open_seconds=5)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == CircuitState.CLOSED and breaker.allows()
    breaker.failure()
    assert breaker.state == CircuitState.OPEN and not breaker.allows()
    clock.now += 5
    assert breaker.state == CircuitState.HALF_OPEN
    assert breaker.allows()  # the one probe
    assert not breaker.allows()  # and no other meanwhile
    breaker.failure()
    assert breaker.state == CircuitState.OPEN
    clock.now += 5
    assert breaker.allows()
    breaker.success()
    assert breaker.state == CircuitState.CLOSED and breaker.allows()


def test_failures_outside_the_window_do_not_open_it() -> None:
    clock = Clock()
    breaker = breaker_with(clock, failure_threshold=3, window_seconds=10, open_seconds=5)
    for _ in range(5):
        breaker.failure()
        clock.now += 6
    assert breaker.state == CircuitState.CLOSED


def test_refused_credentials_trip_it_at_once() -> None:
    breaker = breaker_with(Clock(), failure_threshold=5, window_seconds=10, open_seconds=5)
    breaker.trip()
    assert breaker.state == CircuitState.OPEN and breaker.retry_in() == 5
