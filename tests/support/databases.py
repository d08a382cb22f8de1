"""PostgreSQL for the tests: reachability, and a throwaway schema per test.

Tests that need PostgreSQL are skipped with a message saying how to enable them
when the server is not reachable, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from types import TracebackType

import asyncpg
import pytest

POSTGRES_DSN = os.environ.get(
    "TIDINGS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_available: bool | None = None


def postgres_available() -> bool:
    global _available
    if _available is None:

        async def probe() -> bool:
            try:
                connection = await asyncpg.connect(POSTGRES_DSN, timeout=3)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await connection.close()
            return True

        _available = asyncio.run(probe()) if not _loop_running() else True
    return _available


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def require_or_skip(available: bool, what: str) -> None:
    if available:
        return
    hint = {
        "PostgreSQL": (
            f"start PostgreSQL and point TIDINGS_TEST_POSTGRES_DSN at it (now {POSTGRES_DSN})"
        ),
        "Chromium": "install Chromium (Debian: apt-get install -y chromium) at /usr/bin/chromium",
    }[what]
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true: {hint}")
    pytest.skip(f"{what} is not available: {hint}")


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


class PostgresSchema:
    """A fresh schema in the test database, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"t_{secrets.token_hex(6)}"

    @property
    def url(self) -> str:
        return POSTGRES_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def _execute(self, statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def __enter__(self) -> PostgresSchema:
        _run(self._execute(f'CREATE SCHEMA "{self.name}"'))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _run(self._execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
