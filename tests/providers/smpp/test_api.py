"""The ``smpp`` kind end to end, through the API, against the fake SMSC: a message
delivered by its receipt, a three-part one (three submit_sm, three refs, three
receipts), a receipt that overtakes its submit_sm_resp and one that follows it (matched
at its first try), a contact's STOP (received
on binds that run with nothing sent) opting them out, and refused credentials
making the provider failing without rebinding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.fakes.smsc import (
    PASSWORD,
    SYSTEM_ID,
    BadCredentialsSMSC,
    DeliveryReceiptSMSC,
    FakeSMSC,
    HappySMSC,
    ThrottlingSMSC,
)
from tests.providers.helpers import (
    FAST,
    app_running,
    eventually,
    production_token,
    provider,
    with_overrides,
)
from tests.providers.smpp.contract_case import smpp_report
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer
from tidings.messages.models import Message
from tidings.messages.status import Status
from tidings.providers.base import RawReport
from tidings.providers.models import InboxEvent, ProviderRefRow
from tidings.providers.registry import KindRegistry
from tidings.providers.simulator import SIMULATOR
from tidings.providers.smpp import SMPP
from tidings.settings import Settings

LONG = "A long SMS. " * 30


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    # A throttled submission waits for its bind's pause: give it time.
    return make_settings(
        data_dir,
        sqlite_url,
        # A long SMS's first receipts come while its last parts are still being paced
        # out, before its ids are recorded: they wait for them.
        **with_overrides(
            FAST,
            delivery={"send_timeout_seconds": 10},
            providers={"unmatched_wait_seconds": 30},
        ),
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=KindRegistry([SIMULATOR, SMPP])) as application:
        yield application


def smpp_config(smsc: FakeSMSC, **values: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": smsc.port,
        "systemId": SYSTEM_ID,
        "password": PASSWORD,
        "defaultSender": "Tidings",
        **values,
    }


async def sms(client: httpx.AsyncClient, token: str, to: str, body: str) -> httpx.Response:
    headers = {**bearer(token), "Prefer": "respond-async"}
    return await client.post("/api/v4/sms/send", json={"to": to, "body": body}, headers=headers)


async def refs_of(app: FastAPI, message_id: str) -> list[ProviderRefRow]:
    async with app.state.ctx.sessions() as session:
        query = select(ProviderRefRow).where(ProviderRefRow.message_id == message_id)
        return list(await session.scalars(query.order_by(ProviderRefRow.part)))


async def test_a_message_is_delivered_by_its_receipt(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("both") as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)
        answer = await sms(client, token, "+393331234567", "Hello over SMPP")
        assert answer.status_code == 202, answer.text
        done = await wait_for(client, token, answer.json()["id"], {"delivered"}, base="")
    assert done["providerId"] == provider_id
    assert done["providerMessageId"] == smsc.submitted[0].message_id.lower().lstrip("0")
    assert smsc.submitted[0].text == "Hello over SMPP"


async def test_three_parts_three_refs_three_receipts(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("tlv") as smsc:
        await add_provider(app, user.account_id, "sms", "smpp", config=smpp_config(smsc))
        token = await production_token(app, client, user)
        answer = await sms(client, token, "+393331234567", LONG)
        assert answer.json()["segments"] == 3
        message_id = answer.json()["id"]
        await wait_for(client, token, message_id, {"delivered"}, base="")
        await eventually(lambda: _answered(smsc, 3), "three receipts answered")
    assert [sent.udh[4:] for sent in smsc.submitted] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]
    refs = await refs_of(app, message_id)
    assert [ref.part for ref in refs] == [1, 2, 3]
    assert {ref.external_id for ref in refs} == {
        sent.message_id.lower().lstrip("0") for sent in smsc.submitted
    }


async def _answered(smsc: FakeSMSC, count: int) -> bool:
    return len(smsc.deliver_answers) >= count


async def test_a_receipt_before_its_submit_sm_resp_still_delivers(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("text", before_response=True) as smsc:
        await add_provider(app, user.account_id, "sms", "smpp", config=smpp_config(smsc))
        token = await production_token(app, client, user)
        answer = await sms(client, token, "+393331234567", "Fast receipt")
        done = await wait_for(client, token, answer.json()["id"], {"delivered"}, base="")
    assert done["status"] == "delivered"


async def test_a_receipt_after_its_submit_sm_resp_matches_at_the_first_try(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    """The SMSC sends each receipt right after its submit_sm_resp, so the receipt is
    stored before its verdict is committed: the inbox processor waits for the
    verdicts in flight instead of finding it unmatched and trying again later."""
    async with DeliveryReceiptSMSC("both") as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)
        for number in range(5):
            answer = await sms(client, token, "+393331234567", f"Receipt {number}")
            await wait_for(client, token, answer.json()["id"], {"delivered"}, base="")
    async with app.state.ctx.sessions() as session:
        query = select(InboxEvent.state, InboxEvent.attempts).where(
            InboxEvent.provider_id == provider_id
        )
        rows = (await session.execute(query)).all()
    assert [tuple(row) for row in rows] == [("done", 0)] * 5


async def test_an_undelivered_receipt_carries_its_error(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("both") as smsc:
        await add_provider(app, user.account_id, "sms", "smpp", config=smpp_config(smsc))
        token = await production_token(app, client, user)
        answer = await sms(client, token, "+393330000002", "Nobody home")
        done = await wait_for(client, token, answer.json()["id"], {"undelivered"}, base="")
    assert done["error"]["code"] == "smpp_undeliverable_034"


async def test_a_contact_stop_on_an_idle_bind_opts_them_out(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with HappySMSC() as smsc:
        await add_provider(app, user.account_id, "sms", "smpp", config=smpp_config(smsc))
        token = await production_token(app, client, user)
        # Nothing was sent: the bind is up because the kind is persistent.
        await smsc.wait_bound()
        assert await smsc.deliver_mo("393339999999", "Tidings", "STOP") == [0]

        async def opted_out() -> bool:
            answer = await sms(client, token, "+393339999999", "Still there?")
            return answer.status_code == 422 and answer.json()["code"] == "recipient_opted_out"

        await eventually(opted_out, "the sender opted out")
    async with app.state.ctx.sessions() as session:
        received = list(
            await session.scalars(select(Message).where(Message.direction == "inbound"))
        )
    assert [(m.from_address, m.body, m.status) for m in received] == [
        ("+393339999999", "STOP", "received")
    ]
    assert smsc.submitted == []


async def test_refused_credentials_make_the_provider_failing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with BadCredentialsSMSC() as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)
        answer = await sms(client, token, "+393331234567", "Will wait")

        async def failing() -> bool:
            seen = await provider(client, token, provider_id)
            return bool(seen["health"] == "failing")

        await eventually(failing, "the provider failing")
        seen = await provider(client, token, provider_id)
        assert seen["lastError"]["code"] == "credentials_refused"
        message = await client.get(f"/api/v4/messages/{answer.json()['id']}", headers=bearer(token))
        assert message.json()["status"] == "queued"
        await asyncio.sleep(0.5)
    # One bind attempt by the persistent start (or the first send), never again.
    assert smsc.bind_attempts == 1


async def test_the_agreed_rate_counts_every_part(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    # 2 PDUs a second agreed, and an SMSC that throttles above 4: two three-part
    # messages paced per message would put six PDUs into its first half second, paced
    # per PDU they take 2.5 s (a stall of a whole second on a loaded machine would be
    # needed to bunch five of them into one second).
    async with ThrottlingSMSC(per_second=4, receipts="both") as smsc:
        await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc, throughputPerSecond=2)
        )
        token = await production_token(app, client, user)
        sent = [(await sms(client, token, "+393331234567", LONG)).json()["id"] for _ in range(2)]
        for message_id in sent:
            await wait_for(client, token, message_id, {"delivered"}, base="", timeout=20)
    assert len(smsc.submitted) == 6
    assert smsc.throttled == 0


async def test_a_receipt_on_another_bind_finds_its_message(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with DeliveryReceiptSMSC("tlv", receipts_elsewhere=True) as smsc:
        await add_provider(app, user.account_id, "sms", "smpp", config=smpp_config(smsc, binds=2))
        token = await production_token(app, client, user)
        await smsc.wait_bound(2)
        answer = await sms(client, token, "+393331234567", "Any bind will do")
        await wait_for(client, token, answer.json()["id"], {"delivered"}, base="")
    [submitted] = smsc.submitted
    assert smsc.receipt_binds != [submitted.bind]


async def test_refused_credentials_show_without_any_message(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    async with BadCredentialsSMSC() as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)

        async def failing() -> bool:
            seen = await provider(client, token, provider_id)
            return bool(seen["health"] == "failing")

        await eventually(failing, "the provider failing with nothing sent")
        seen = await provider(client, token, provider_id)
        assert seen["lastError"]["code"] == "credentials_refused"
    assert (smsc.bind_attempts, smsc.submitted) == (1, [])


async def test_a_long_sms_is_delivered_when_every_part_is(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    """Receipts come per part; the message is delivered by the last one, and a part
    that is not delivered makes it undelivered."""
    async with HappySMSC() as smsc:
        provider_id = await add_provider(
            app, user.account_id, "sms", "smpp", config=smpp_config(smsc)
        )
        token = await production_token(app, client, user)
        whole = (await sms(client, token, "+393331234567", LONG)).json()["id"]
        broken = (await sms(client, token, "+393331234568", LONG)).json()["id"]
        await wait_for(client, token, whole, {"sent"}, base="")
        await wait_for(client, token, broken, {"sent"}, base="")
        parts = {message_id: await refs_of(app, message_id) for message_id in (whole, broken)}

        async def receipt(ref: ProviderRefRow, status: Status, key: str) -> None:
            payload = smpp_report(ref.external_id, status, datetime.now(UTC))
            await app.state.ctx.runtime.inbox.store(provider_id, [RawReport(key, payload)])

        first, second, third = parts[whole]
        await receipt(first, Status.DELIVERED, "w1")
        await receipt(second, Status.DELIVERED, "w2")
        await receipt(second, Status.DELIVERED, "w2-again")
        await receipt(parts[broken][0], Status.DELIVERED, "b1")
        await receipt(parts[broken][1], Status.UNDELIVERED, "b2")
        undelivered = await wait_for(client, token, broken, {"undelivered"}, base="")
        waiting = await wait_for(client, token, whole, {"sent"}, base="")
        assert [e["event"] for e in waiting["events"]].count("part_delivered") == 2
        await receipt(third, Status.DELIVERED, "w3")
        done = await wait_for(client, token, whole, {"delivered"}, base="")
    assert [e["event"] for e in done["events"]].count("part_delivered") == 3
    assert undelivered["status"] == "undelivered"
