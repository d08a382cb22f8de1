"""CSV import: 100,000 rows with bad ones reported by line, CSV dialect details
(quotes, BOM, CRLF), header errors, updates of existing contacts, multipart
uploads and ``?listId=``."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.contacts.support import CONTACTS, IMPORT, LISTS, listed, make_contact
from tests.support.users import TestUser, bearer, login
from tidings.settings import Settings

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, data_dir: Path, sqlite_url: tuple[str, str | None]
) -> Settings:
    """The suite's settings, with what a test gives through indirect parametrization."""
    return make_settings(data_dir, sqlite_url, **getattr(request, "param", {}))


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def upload(
    client: httpx.AsyncClient, token: str, body: bytes | str, **params: str
) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return await client.post(IMPORT, content=data, params=params, headers={**bearer(token), **CSV})


async def test_hundred_thousand_rows(client: httpx.AsyncClient, token: str) -> None:
    lines = ["Phone,Email,name,plan"]
    bad: dict[int, str] = {}
    for i in range(100_000):
        line = i + 2
        phone, email = f"+39333{i:07d}", f"user{i}@example.com" if i % 10 == 0 else ""
        if i % 100 == 50:
            kind = (i // 100) % 3
            if kind == 0:
                phone, bad[line] = "+12", "invalid_phone_number"
            elif kind == 1:
                email, bad[line] = "user@@example.com", "invalid_email"
            else:
                phone, email, bad[line] = "", "", "phone_or_email_required"
        lines.append(f"{phone},{email},Name {i},gold")
    started = time.perf_counter()
    answer = await upload(client, token, "\n".join(lines) + "\n")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["rows"] == 100_000
    assert report["accepted"] == report["created"] == 99_000
    assert report["updated"] == 0 and report["rejected"] == 1_000
    assert [(e["line"], e["code"]) for e in report["errors"]] == sorted(bad.items())
    found = await listed(client, token, phone="+393330099999")
    assert found["data"][0]["variables"] == {"name": "Name 99999", "plan": "gold"}
    print(f"imported 100,000 rows in {elapsed:.2f} s")


async def test_dialect_bom_crlf_quotes_and_extra_columns(
    client: httpx.AsyncClient, token: str
) -> None:
    body = (
        "\ufeffEMAIL,first_name,note\r\n"
        '"ada@example.com","Ada","says ""hi"", twice"\r\n'
        "\r\n"
        'bob@example.com,Bob,"two\r\nlines"\r\n'
        "not-an-email,Eve,x\r\n"
        "carl@example.com,,\r\n"
    )
    answer = await upload(client, token, body.encode("utf-8"))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["rows"] == 4 and report["created"] == 3
    # Line 3 is blank and bob's note spans lines 4-5: eve is on line 6.
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(6, "invalid_email")]
    ada = (await listed(client, token, email="ada@example.com"))["data"][0]
    assert ada["variables"] == {"first_name": "Ada", "note": 'says "hi", twice'}
    bob = (await listed(client, token, email="bob@example.com"))["data"][0]
    assert bob["variables"]["note"] == "two\r\nlines"
    carl = (await listed(client, token, email="carl@example.com"))["data"][0]
    assert carl["variables"] == {}


async def test_rows_update_existing_contacts(client: httpx.AsyncClient, token: str) -> None:
    ada = await make_contact(
        client, token, phone="+393331234567", variables={"name": "Ada", "city": "Rome"}
    )
    await make_contact(client, token, email="bob@example.com")
    body = (
        "phone,email,city,tier\n"
        "+393331234567,ada@example.com,Milan,\n"  # phone match: email set, city merged
        "+393339876543,bob@example.com,,gold\n"  # email match: phone set
        "+393331234567,bob@example.com,,\n"  # phone is ada's, email bob's
        "+393330000001,,Oslo,\n"
        "+393330000001,,,silver\n"  # same file, same person: one contact
    )
    report = (await upload(client, token, body)).json()
    assert report["created"] == 1 and report["updated"] == 3 and report["rejected"] == 1
    assert report["errors"][0]["line"] == 4
    assert report["errors"][0]["code"] == "conflicting_contacts"
    shown = (await client.get(f"{CONTACTS}/{ada['id']}", headers=bearer(token))).json()
    assert shown["email"] == "ada@example.com"
    assert shown["variables"] == {"name": "Ada", "city": "Milan"}
    bob = (await listed(client, token, email="bob@example.com"))["data"][0]
    assert bob["phone"] == "+393339876543" and bob["variables"] == {"tier": "gold"}
    new = (await listed(client, token, phone="+393330000001"))["data"][0]
    assert new["variables"] == {"city": "Oslo", "tier": "silver"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("name,city\nAda,Rome\n", "missing_contact_column"),
        ("", "empty_file"),
        ("phone,1st\n+393331234567,x\n", "invalid_csv_header"),
        ("phone,Phone\n+393331234567,x\n", "invalid_csv_header"),
    ],
)
async def test_header_errors(client: httpx.AsyncClient, token: str, body: str, code: str) -> None:
    answer = await upload(client, token, body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code
    assert (await listed(client, token))["data"] == []


async def test_missing_header_names_what_it_found(client: httpx.AsyncClient, token: str) -> None:
    problem = (await upload(client, token, "name,city\nAda,Rome\n")).json()
    assert "phone" in problem["detail"] and "'name', 'city'" in problem["detail"]


async def test_row_level_problems(client: httpx.AsyncClient, token: str) -> None:
    body = b"phone,name\n+393331234567,Ada,extra\n+39333\xff1234568,Bob\n+393331234569,Eve\n"
    report = (await upload(client, token, body)).json()
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (2, "too_many_fields"),
        (3, "invalid_encoding"),
    ]
    assert report["accepted"] == 1


@pytest.mark.parametrize("settings", [{"import_max_rows": 2}], indirect=True)
async def test_row_limit(client: httpx.AsyncClient, token: str) -> None:
    body = "phone\n+393331234561\n+393331234562\n+393331234563\n"
    report = (await upload(client, token, body)).json()
    assert report["accepted"] == 2 and report["rejected"] == 1
    assert report["errors"][0] == {
        "line": 4,
        "code": "too_many_rows",
        "reason": "A file imports at most 2 rows; this one is past that.",
    }


async def test_multipart_upload_into_a_list(client: httpx.AsyncClient, token: str) -> None:
    made = await client.post(LISTS, json={"name": "Imported"}, headers=bearer(token))
    list_id = made.json()["id"]
    csv_bytes = b"phone,name\r\n+393331234567,Ada\r\n+393339876543,Bob\r\n"
    answer = await client.post(
        IMPORT,
        params={"listId": list_id},
        data={"note": "ignored"},
        files={"file": ("contacts.csv", io.BytesIO(csv_bytes), "text/csv")},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 2
    members = await listed(client, token, f"{LISTS}/{list_id}/contacts")
    assert {c["variables"]["name"] for c in members["data"]} == {"Ada", "Bob"}

    missing = await client.post(
        IMPORT,
        files={"other": ("x.csv", io.BytesIO(csv_bytes), "text/csv")},
        headers=bearer(token),
    )
    assert missing.status_code == 422 and missing.json()["code"] == "missing_file"
    no_list = await upload(client, token, csv_bytes, listId="lst_nope")
    assert no_list.status_code == 404 and no_list.json()["code"] == "list_not_found"


async def test_other_media_types_are_refused(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        IMPORT,
        content=b"phone\n+393331234567\n",
        headers={**bearer(token), "Content-Type": "application/xml"},
    )
    assert answer.status_code == 415 and answer.json()["code"] == "unsupported_media_type"
