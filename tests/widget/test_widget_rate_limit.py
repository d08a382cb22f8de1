"""The chat box's requests count against the account that made it, not against the
visitor's address, and its static files are not counted at all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tests.widget.test_widget_api import widget_token
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(
        data_dir, sqlite_url, rate_limit={"per_minute": 1000, "anonymous_per_minute": 3}
    )


async def test_chat_box_requests_count_against_the_account(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    box = await widget_token(client, token)
    for _ in range(6):
        page = await client.get("/sandbox/widget/whatsapp/chat-box", params={"token": box})
        assert page.status_code == 200
        assert page.headers["ratelimit-limit"] == "1000"
        history = await client.get("/sandbox/widget/api/messages", headers=bearer(box))
        assert history.status_code == 200, history.text
        assert history.headers["ratelimit-limit"] == "1000"
    # A forged token is anonymous: the visitor's address pays, and runs out.
    answers = [
        await client.get("/sandbox/widget/whatsapp/chat-box", params={"token": box + "x"})
        for _ in range(4)
    ]
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert answers[-1].status_code == 429
