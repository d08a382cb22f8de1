"""Lists: create, read, update, delete (contacts stay), membership by id and by
phone/email, the members' page, and ``list_recipients`` for bulk sends."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.contacts.support import CONTACTS, LISTS, listed, make_contact
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.contacts.lists import ListRecipient, list_recipients
from tidings.core.errors import NotFound
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """On SQLite and PostgreSQL."""
    return make_settings(data_dir, database_url)


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def make_list(client: httpx.AsyncClient, token: str, name: str = "News") -> str:
    answer = await client.post(LISTS, json={"name": name}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_list_crud(client: httpx.AsyncClient, token: str) -> None:
    made = await client.post(
        LISTS, json={"name": "News", "description": "Monthly"}, headers=bearer(token)
    )
    assert made.status_code == 201
    body = made.json()
    assert body["id"].startswith("lst_") and body["contactCount"] == 0
    assert body["description"] == "Monthly"
    url = f"{LISTS}/{body['id']}"
    patched = await client.patch(url, json={"description": None}, headers=bearer(token))
    assert patched.status_code == 200
    assert patched.json()["description"] is None and patched.json()["name"] == "News"
    bad = await client.patch(url, json={"name": ""}, headers=bearer(token))
    assert bad.status_code == 422
    second = await make_list(client, token, "Other")
    assert [row["id"] for row in (await listed(client, token, LISTS))["data"]] == [
        second,
        body["id"],
    ]
    assert (await client.delete(url, headers=bearer(token))).status_code == 204
    gone = await client.get(url, headers=bearer(token))
    assert gone.status_code == 404 and gone.json()["code"] == "list_not_found"


async def test_membership(
    app: FastAPI, client: httpx.AsyncClient, token: str, user: TestUser
) -> None:
    list_id = await make_list(client, token)
    ada = await make_contact(client, token, phone="+393331234567", variables={"name": "Ada"})
    members = f"{LISTS}/{list_id}/contacts"
    answer = await client.post(
        members,
        json={
            "contactIds": [ada["id"], "con_missing", ada["id"]],
            "contacts": [
                {"phone": "+393331234567", "variables": {"city": "Rome"}},
                {"email": "bob@example.com", "variables": {"name": "Bob"}},
                {"phone": "+12"},
                {},
            ],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["added"] == 2 and result["created"] == 1
    assert result["alreadyMember"] == 2  # ada again by id and by phone
    assert result["rejected"] == 3
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("contactIds[1]", "contact_not_found"),
        ("contacts[2].phone", "invalid_phone_number"),
        ("contacts[3].phone", "phone_or_email_required"),
    ]
    found = (await client.get(f"{CONTACTS}/{ada['id']}", headers=bearer(token))).json()
    assert found["variables"] == {"name": "Ada", "city": "Rome"}

    page = await listed(client, token, members)
    assert len(page["data"]) == 2 and page["data"][1]["id"] == ada["id"]
    assert (await client.get(f"{LISTS}/{list_id}", headers=bearer(token))).json()[
        "contactCount"
    ] == 2
    filtered = await listed(client, token, listId=list_id)
    assert [c["id"] for c in filtered["data"]] == [c["id"] for c in page["data"]]

    async with app.state.ctx.sessions() as session:
        recipients = await list_recipients(
            session, account_id=user.account_id, environment="sandbox", list_id=list_id
        )
        assert recipients[0] == ListRecipient(
            ada["id"], "+393331234567", None, {"name": "Ada", "city": "Rome"}
        )
        assert recipients[1].email == "bob@example.com"
        with pytest.raises(NotFound) as missing:
            await list_recipients(
                session, account_id=user.account_id, environment="production", list_id=list_id
            )
        assert missing.value.code == "list_not_found"

    removed = await client.delete(f"{members}/{ada['id']}", headers=bearer(token))
    assert removed.status_code == 204
    again = await client.delete(f"{members}/{ada['id']}", headers=bearer(token))
    assert again.status_code == 404 and again.json()["code"] == "not_a_member"
    assert len((await listed(client, token, members))["data"]) == 1

    assert (await client.delete(f"{LISTS}/{list_id}", headers=bearer(token))).status_code == 204
    assert len((await listed(client, token))["data"]) == 2  # the contacts stay


async def test_deleting_a_contact_leaves_its_lists(client: httpx.AsyncClient, token: str) -> None:
    list_id = await make_list(client, token)
    ada = await make_contact(client, token, phone="+393331234567")
    await client.post(
        f"{LISTS}/{list_id}/contacts", json={"contactIds": [ada["id"]]}, headers=bearer(token)
    )
    assert (
        await client.delete(f"{CONTACTS}/{ada['id']}", headers=bearer(token))
    ).status_code == 204
    shown = (await client.get(f"{LISTS}/{list_id}", headers=bearer(token))).json()
    assert shown["contactCount"] == 0


async def test_lists_are_isolated(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
    list_id = await make_list(client, token)
    ada = await make_contact(client, token, phone="+393331234567")
    other = await login(client, await create_test_user(app, "eve@example.com"))
    assert (await listed(client, other, LISTS))["data"] == []
    for method, path in (
        ("GET", f"{LISTS}/{list_id}"),
        ("GET", f"{LISTS}/{list_id}/contacts"),
        ("DELETE", f"{LISTS}/{list_id}"),
    ):
        answer = await client.request(method, path, headers=bearer(other))
        assert answer.status_code == 404, (method, path)
    theirs = await make_list(client, other)
    answer = await client.post(
        f"{LISTS}/{theirs}/contacts", json={"contactIds": [ada["id"]]}, headers=bearer(other)
    )
    assert answer.json()["errors"][0]["code"] == "contact_not_found"
    prod = await client.get(
        f"/api/v4/lists/{list_id}",
        headers=bearer(
            await login(
                client, TestUser("", "", "ada@example.com", "correct horse battery staple"), base=""
            )
        ),
    )
    assert prod.status_code == 404
