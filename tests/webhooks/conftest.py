"""Webhook tests: compressed webhook timings and a scriptable local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.webhooks.hook_receiver import Receiver
from tidings.settings import Settings

FAST_WEBHOOKS: dict[str, object] = {
    "retry_schedule": [0.2, 0.3, 0.4, 0.5, 0.5, 0.5],
    "poll_interval_seconds": 0.1,
    "timeout_seconds": 2.0,
    "lease_seconds": 5.0,
    # The receiver listens on loopback; private destinations are off by default.
    "allow_private_in_sandbox": True,
}


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
