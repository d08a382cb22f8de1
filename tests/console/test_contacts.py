"""The contacts page: lists, a new list, the CSV upload through the API's import with
its report (into a list), the token inside the multipart body, scoping."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in, signed_in_token
from tests.support.users import TestUser, bearer, create_test_user, login

CSV = (
    "phone,email,name\n"
    "+393331234567,ada@example.com,Ada\n"
    "not a number,,Bob\n"
    ",grace@example.com,Grace\n"
)


async def _upload(
    client: httpx.AsyncClient, token: str | None, *, list_id: str = "", body: str = CSV
) -> httpx.Response:
    fields = {"list": list_id} if token is None else {"csrf": token, "list": list_id}
    return await client.post(
        "/sandbox/console/contacts/import",
        data=fields,
        files={"file": ("people.csv", body.encode(), "text/csv")},
    )


async def test_list_then_import_into_it_with_its_report(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    made = await client.post(
        "/sandbox/console/contacts/lists", data={"csrf": token, "name": "Newsletter"}
    )
    assert made.status_code == 303
    list_id = made.headers["location"].split("list=")[1].split("&")[0]

    report = await _upload(client, token, list_id=list_id)
    assert report.status_code == 200, report.text
    text = report.text
    assert 'id="import-report"' in text
    assert "3 rows read" in text and "2 created" in text and "1 rejected" in text
    assert '<td class="num">3</td><td class="mono">invalid_phone_number</td>' in text

    in_list = await client.get("/sandbox/console/contacts", params={"list": list_id})
    assert "+393331234567" in in_list.text and "grace@example.com" in in_list.text
    assert "2 contacts" in in_list.text
    found = await client.get("/sandbox/console/contacts", params={"q": "grace"})
    assert "grace@example.com" in found.text and "+393331234567" not in found.text

    # A file the import refuses as a whole says why.
    refused = await _upload(client, token, body="name,city\nAda,Rome\n")
    assert refused.status_code == 422
    assert 'class="alert" role="alert"' in refused.text


async def test_the_upload_needs_its_token_and_this_accounts_list(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await create_test_user(app, "grace@example.com")
    theirs = await client.post(
        "/sandbox/api/v4/lists", json={"name": "Theirs"}, headers=bearer(await login(client, other))
    )
    assert theirs.status_code == 201, theirs.text
    their_list = theirs.json()["id"]

    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    assert (await _upload(client, None)).status_code == 403
    assert (await _upload(client, "forged")).status_code == 403
    plain = await client.post(
        "/sandbox/console/contacts/import", data={"csrf": token}
    )  # a form without the file's encoding
    assert plain.status_code == 403
    assert (await _upload(client, token, list_id=their_list)).status_code == 404
    assert (
        await client.get("/sandbox/console/contacts", params={"list": their_list})
    ).status_code == 404
    listed = await client.get("/sandbox/console/contacts")
    assert "Theirs" not in listed.text and "No contact." in listed.text
    # Nothing was imported by the refused uploads.
    assert "+393331234567" not in listed.text
