"""Provider tests: compressed routing timings, and an application that knows the
test kinds of :mod:`tests.fakes` besides the real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.providers.helpers import FAST, app_running, kinds_for_tests
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url, **FAST)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=kinds_for_tests()) as application:
        yield application
