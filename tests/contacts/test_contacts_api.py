"""Contacts: create, read, update (merging variables), delete, list with filters and
search, 409 on duplicates, opt-out state per channel, and tenant isolation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.contacts.support import CONTACTS, listed, make_contact
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.contacts.suppressions import SuppressionRepository
from tidings.core.clock import SystemClock
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """On SQLite and PostgreSQL."""
    return make_settings(data_dir, database_url)


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_crud(client: httpx.AsyncClient, token: str) -> None:
    made = await make_contact(
        client, token, phone="393331234567", email="Ada@Example.com", variables={"name": "Ada"}
    )
    assert made["id"].startswith("con_")
    assert made["phone"] == "+393331234567" and made["email"] == "ada@example.com"
    assert made["variables"] == {"name": "Ada"}
    assert made["optOut"] == {"sms": False, "whatsapp": False, "email": False}
    url = f"{CONTACTS}/{made['id']}"
    assert (await client.get(url, headers=bearer(token))).json() == made

    patched = await client.patch(
        url,
        json={"variables": {"city": "Rome", "name": None}, "email": None},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["variables"] == {"city": "Rome"} and body["email"] is None
    assert body["phone"] == "+393331234567"

    neither = await client.patch(url, json={"phone": None}, headers=bearer(token))
    assert neither.status_code == 422 and neither.json()["code"] == "phone_or_email_required"

    assert (await client.delete(url, headers=bearer(token))).status_code == 204
    gone = await client.get(url, headers=bearer(token))
    assert gone.status_code == 404 and gone.json()["code"] == "contact_not_found"
    assert (await client.delete(url, headers=bearer(token))).status_code == 404


async def test_validation(client: httpx.AsyncClient, token: str) -> None:
    cases = [
        ({}, "phone_or_email_required"),
        ({"phone": "+12"}, "invalid_phone_number"),
        ({"email": "ada@"}, "invalid_email"),
        ({"phone": "+393331234567", "variables": {"1x": "a"}}, "invalid_variable_name"),
    ]
    for body, code in cases:
        answer = await client.post(CONTACTS, json=body, headers=bearer(token))
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == code


async def test_duplicates_conflict(client: httpx.AsyncClient, token: str) -> None:
    first = await make_contact(client, token, phone="+393331234567", email="ada@example.com")
    for body in ({"phone": "+39 333 123 4567"}, {"email": "ADA@example.com"}):
        answer = await client.post(CONTACTS, json=body, headers=bearer(token))
        assert answer.status_code == 409
        problem = answer.json()
        assert problem["code"] == "contact_exists" and problem["contactId"] == first["id"]
        assert first["id"] in problem["detail"]
    other = await make_contact(client, token, phone="+393339876543")
    taken = await client.patch(
        f"{CONTACTS}/{other['id']}", json={"email": "ada@example.com"}, headers=bearer(token)
    )
    assert taken.status_code == 409 and taken.json()["contactId"] == first["id"]


async def test_idempotent_create(client: httpx.AsyncClient, token: str) -> None:
    headers = {**bearer(token), "Idempotency-Key": "k-1"}
    first = await client.post(CONTACTS, json={"phone": "+393331234567"}, headers=headers)
    again = await client.post(CONTACTS, json={"phone": "+393331234567"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


async def test_listing_filters_and_search(client: httpx.AsyncClient, token: str) -> None:
    ada = await make_contact(
        client, token, phone="+393331234567", variables={"name": "Ada", "city": "Rome"}
    )
    bob = await make_contact(client, token, email="bob@example.com", variables={"name": "Bob"})
    eve = await make_contact(client, token, phone="+393339876543", email="eve@example.org")

    everyone = await listed(client, token)
    assert [c["id"] for c in everyone["data"]] == [eve["id"], bob["id"], ada["id"]]
    first = await listed(client, token, limit=2)
    assert len(first["data"]) == 2 and first["nextCursor"] == bob["id"]
    rest = await listed(client, token, limit=2, after=first["nextCursor"])
    assert [c["id"] for c in rest["data"]] == [ada["id"]] and rest["nextCursor"] is None

    def ids(page: dict[str, object]) -> list[str]:
        return [c["id"] for c in page["data"]]  # type: ignore[attr-defined,index]

    assert ids(await listed(client, token, search="ROME")) == [ada["id"]]
    assert ids(await listed(client, token, search="example")) == [eve["id"], bob["id"]]
    assert ids(await listed(client, token, search="98765")) == [eve["id"]]
    assert ids(await listed(client, token, search="name")) == []  # names are not values
    assert ids(await listed(client, token, search="%")) == []
    assert ids(await listed(client, token, phone="+393331234567")) == [ada["id"]]
    assert ids(await listed(client, token, email="BOB@example.com")) == [bob["id"]]
    missing = await client.get(CONTACTS, params={"listId": "lst_x"}, headers=bearer(token))
    assert missing.status_code == 404 and missing.json()["code"] == "list_not_found"


async def test_opt_out_state_per_channel(
    app: FastAPI, client: httpx.AsyncClient, token: str, user: TestUser
) -> None:
    both = await make_contact(client, token, phone="+393331234567", email="ada@example.com")
    stop = await client.post(
        "/sandbox/api/v4/sandbox/inbound",
        json={"channel": "sms", "from": "+393331234567", "body": "STOP"},
        headers=bearer(token),
    )
    assert stop.status_code == 201
    async with app.state.ctx.sessions() as session:
        await SuppressionRepository(session).add(
            user.account_id,
            "sandbox",
            "ada@example.com",
            reason="bounce",
            message_id=None,
            at=SystemClock().now(),
        )
        await session.commit()
    shown = (await client.get(f"{CONTACTS}/{both['id']}", headers=bearer(token))).json()
    assert shown["optOut"] == {"sms": True, "whatsapp": False, "email": True}
    page = await listed(client, token)
    assert page["data"][0]["optOut"] == {"sms": True, "whatsapp": False, "email": True}


async def test_tenants_are_isolated(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
    made = await make_contact(client, token, phone="+393331234567")
    other = await login(client, await create_test_user(app, "eve@example.com"))
    production = await login(client, await create_test_user(app, "bob@example.com"), base="")
    mine = await login(
        client, TestUser("", "", "ada@example.com", "correct horse battery staple"), base=""
    )
    for who, base in ((other, "/sandbox"), (production, ""), (mine, "")):
        assert (await listed(client, who, f"{base}/api/v4/contacts"))["data"] == []
        answer = await client.get(f"{base}/api/v4/contacts/{made['id']}", headers=bearer(who))
        assert answer.status_code == 404
        patched = await client.patch(
            f"{base}/api/v4/contacts/{made['id']}", json={"variables": {}}, headers=bearer(who)
        )
        assert patched.status_code == 404
    # The same phone is a new contact in another account or environment.
    for who, base in ((other, "/sandbox"), (mine, "")):
        again = await client.post(
            f"{base}/api/v4/contacts", json={"phone": "+393331234567"}, headers=bearer(who)
        )
        assert again.status_code == 201, again.text
