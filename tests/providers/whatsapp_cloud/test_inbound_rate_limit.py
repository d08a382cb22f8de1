"""Meta posts from a few addresses: its webhooks are never refused by the anonymous
per-address rate limit, which still refuses everything else from that address."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import FAST, app_running, http, production_token
from tests.providers.whatsapp_cloud import meta_examples
from tests.support.providers import add_provider
from tests.support.users import create_test_user
from tidings.providers.registry import default_kinds


async def test_webhooks_are_not_counted_against_the_address(
    data_dir: Path, sqlite_url: tuple[str, str | None], graph: GraphApi
) -> None:
    settings = make_settings(data_dir, sqlite_url, **FAST, rate_limit={"anonymous_per_minute": 3})
    async with app_running(settings, kinds=default_kinds()) as app, http(app) as client:
        user = await create_test_user(app)
        await production_token(app, client, user)
        provider_id = await add_provider(
            app, user.account_id, "whatsapp", "whatsapp_cloud", config=graph.provider_config()
        )
        graph.webhook_client = client
        graph.webhook_url = f"/inbound/whatsapp/{provider_id}"
        body = meta_examples.for_fake(meta_examples.TEXT)
        for _ in range(8):
            assert (await graph.post_webhook(body)).status_code == 200
        # The same address is still limited elsewhere.
        answers = [(await client.get("/api/v4/messages")).status_code for _ in range(5)]
        assert 429 in answers
