"""Fixtures shared by the whole suite: settings on a fresh data directory, the
database on SQLite and (where reachable, always under CI=true) PostgreSQL, the
application, an HTTP client, and an account with a user and tokens."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.support.databases import (
    PostgresSchema,
    migrate_to_head,
    postgres_available,
    require_or_skip,
)
from tests.support.processes import CHEAP_PASSWORD_HASHING, TEST_SECRETS_KEYS
from tests.support.users import TestUser, create_test_user
from tidings.app import create_app
from tidings.core.clock import FrozenClock
from tidings.settings import Settings

# Passwords made by the tests guard nothing: argon2id at its cheapest (tens of
# microseconds instead of ~100 ms a hash). Set before anything hashes; the production
# defaults are tested in tests/auth/test_password_costs.py.
os.environ.update(CHEAP_PASSWORD_HASHING)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, data_dir: Path
) -> Iterator[tuple[str, str | None]]:
    """Each database test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None
        return
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as schema:
        yield schema.url, schema.name


@pytest.fixture
def sqlite_url(data_dir: Path) -> tuple[str, str | None]:
    return f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def make_settings(
    data_dir: Path, database: tuple[str, str | None], **overrides: object
) -> Settings:
    url, schema = database
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": url,
        "database_schema": schema,
        "secrets_keys": TEST_SECRETS_KEYS,
        "login_throttle": {"slowdown_seconds": 0},
        # Compressed timings: retries and simulated receipts in milliseconds.
        "delivery": {"backoff_base_seconds": 0.05, "poll_interval_seconds": 0.2},
        "sandbox": {"receipt_delay_seconds": 0.01, "recovery_interval_seconds": 0.5},
        "providers": {"inbox_poll_seconds": 0.2},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        yield http


@pytest.fixture
async def user(app: FastAPI) -> TestUser:
    return await create_test_user(app)
