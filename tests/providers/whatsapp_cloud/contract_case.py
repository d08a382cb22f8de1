"""The ``whatsapp_cloud`` kind's row of the providers contract
(tests/providers/test_contract.py): each scenario acted by the Graph fake of
:mod:`tests.fakes.graph_api` on a real socket, and a status as the inbound edge
stores one of Meta's webhooks in the inbox.

WhatsApp needs two things the other kinds do not, given by :func:`attach_whatsapp`
(the case's ``attach``, called once a provider exists in a running app): the fake
must know where to post its signed webhooks (the app's ``/inbound/whatsapp/<id>``,
for the first provider of its number in that app),
and the recipient must have written in (production refuses free-form messages
outside the 24-hour window, before any provider is asked). The fake's held status
webhooks (Meta retrying them) are posted to the app attached last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.responses import Response

from tests.fakes.black_hole import BlackHole
from tests.fakes.graph_api import PHONE_NUMBER_ID, GraphApi, graph_error
from tidings.core.environments import Environment
from tidings.messages.status import Status
from tidings.providers.base import InboundMessage

ORDINARY = "+393331234567"
META_STATUS = {
    Status.SENT: "sent",
    Status.DELIVERED: "delivered",
    Status.READ: "read",
    Status.UNDELIVERED: "failed",
}
# The fakes of the running scenarios, by the base URL a provider's config names.
_FAKES: dict[str, GraphApi] = {}


def whatsapp_report(external_id: str, status: Status, at: datetime) -> dict[str, Any]:
    """A status as the inbound edge stores it (see ``webhook.split_body``)."""
    return {
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "status": {
            "id": external_id,
            "status": META_STATUS[status],
            "timestamp": str(int(at.timestamp())),
            "recipient_id": ORDINARY.removeprefix("+"),
        },
    }


def _failing_first(count: int) -> Any:
    answers = iter([graph_error(500, 131000, "Something went wrong", "Try again later.")] * count)

    def answer(body: dict[str, Any]) -> Response | None:
        return next(answers, None)

    return answer


@asynccontextmanager
async def provoke_whatsapp(scenario: str) -> AsyncIterator[Any]:
    from tests.providers.test_contract import Provocation

    async with AsyncExitStack() as stack:
        fake = GraphApi(enforce_window=False, hold=scenario == "quiet")
        await fake.start()
        stack.push_async_callback(fake.stop)
        _FAKES[fake.base_url] = fake
        stack.callback(_FAKES.pop, fake.base_url, None)
        working = fake.provider_config()
        if scenario in ("success", "quiet"):
            yield Provocation(working, ORDINARY)
        elif scenario == "retryable":
            fake.answer_with(_failing_first(2))
            yield Provocation(working, ORDINARY)
        elif scenario == "permanent":
            fake.undeliverable.add(ORDINARY.removeprefix("+"))
            yield Provocation(working, ORDINARY)
        elif scenario == "throttled":
            fake.throttled_tokens.add("EAAG-over-the-rate")
            yield Provocation(
                fake.provider_config(accessToken="EAAG-over-the-rate"), ORDINARY, working
            )
        elif scenario == "credentials_refused":
            yield Provocation(fake.provider_config(accessToken="EAAG-expired"), ORDINARY, working)
        elif scenario == "black_hole":
            hole = await stack.enter_async_context(BlackHole())
            silent = fake.provider_config(baseUrl=f"http://127.0.0.1:{hole.port}")
            yield Provocation(silent, ORDINARY, working)
        else:
            raise ValueError(scenario)


async def attach_whatsapp(
    app: FastAPI, client: httpx.AsyncClient, provider_id: str, provocation: Any
) -> None:
    """Point the scenario's fake at this app's inbound URL for the provider, post
    what it held, and have the recipient write in (the window opens)."""
    config = provocation.recovered or provocation.config
    fake = _FAKES[config["baseUrl"]]
    if fake.webhook_client is not client:
        # Another app: Meta's one callback URL now leads there, and what it kept
        # trying to post arrives. A second provider of the same number in the same
        # app changes nothing (one number, one URL).
        fake.webhook_client = client
        fake.webhook_url = f"/inbound/whatsapp/{provider_id}"
        fake.release()
    found = await app.state.ctx.runtime.providers.config_of(provider_id)
    assert found is not None
    route, _config = found
    assert route.account_id is not None
    await app.state.ctx.runtime.inbound.receive(
        InboundMessage(
            channel="whatsapp",
            sender=provocation.to,
            recipient="+15550783881",
            body="Hi",
            at=app.state.ctx.clock.now(),
            external_id=f"wamid.contract-{provider_id}",
        ),
        account_id=route.account_id,
        environment=Environment.PRODUCTION,
    )
