"""Console tests: the suite's app with fast webhooks to a local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.webhooks.conftest import FAST_WEBHOOKS
from tests.webhooks.hook_receiver import Receiver
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url, webhooks=FAST_WEBHOOKS)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()
