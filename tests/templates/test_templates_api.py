"""Listing and submitting templates over HTTP: filters, pagination, validation,
conflicts, idempotency, production, and tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.users import TestUser, bearer, create_test_user, login

TEMPLATES = "/sandbox/api/v4/notifications/whatsapp/templates"


def new_template(name: str = "welcome_note", **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "language": "en",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Hello {{1}}, welcome to our little shop by the sea."}
        ],
        **overrides,
    }


async def test_the_sandbox_starts_with_the_approved_set(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.get(TEMPLATES, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    listed = {(t["name"], t["language"]): t for t in answer.json()["data"]}
    assert set(listed) == {
        (name, language)
        for name in ("one_time_code", "order_update", "spring_offer")
        for language in ("en", "it")
    }
    order = listed[("order_update", "en")]
    assert order["id"].startswith("tpl_") and order["status"] == "APPROVED"
    assert order["category"] == "UTILITY" and order["rejectedReason"] is None
    counts = {c["type"]: (c["parameterCount"], c["parameterNames"]) for c in order["components"]}
    assert counts == {"HEADER": (1, ["1"]), "BODY": (2, ["1", "2"]), "FOOTER": (0, [])}
    offer = listed[("spring_offer", "it")]
    assert offer["parameterFormat"] == "NAMED"
    header, body, _footer, buttons = offer["components"]
    assert (header["format"], header["parameterCount"]) == ("IMAGE", 1)
    assert body["parameterNames"] == ["first_name"]
    assert [(b["type"], b["parameterCount"]) for b in buttons["buttons"]] == [
        ("QUICK_REPLY", 0),
        ("URL", 1),
    ]
    otp = listed[("one_time_code", "en")]["components"][1]["buttons"][0]
    assert (otp["type"], otp["otpType"]) == ("OTP", "COPY_CODE")


async def test_filters_and_pages(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    only = await client.get(
        TEMPLATES, params={"name": "order_update", "language": "it"}, headers=bearer(token)
    )
    assert [(t["name"], t["language"]) for t in only.json()["data"]] == [("order_update", "it")]
    italian = await client.get(TEMPLATES, params={"language": "it"}, headers=bearer(token))
    assert len(italian.json()["data"]) == 3
    pending = await client.get(TEMPLATES, params={"status": "PENDING"}, headers=bearer(token))
    assert pending.json() == {"data": [], "nextCursor": None}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, "status": "all"}
        if cursor:
            params["after"] = cursor
        page = (await client.get(TEMPLATES, params=params, headers=bearer(token))).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len(set(seen)) == 6 and seen == sorted(seen, reverse=True)
    bad = await client.get(TEMPLATES, params={"status": "GONE"}, headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


async def test_submit_answers_pending_and_refuses_duplicates(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    created = await client.post(TEMPLATES, json=new_template(), headers=bearer(token))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "PENDING" and body["name"] == "welcome_note"
    assert body["components"][0]["parameterCount"] == 1
    again = await client.post(TEMPLATES, json=new_template(), headers=bearer(token))
    assert again.status_code == 409
    assert again.json()["code"] == "template_exists"
    assert again.headers["content-type"] == "application/problem+json"
    other_language = await client.post(
        TEMPLATES, json=new_template(language="it"), headers=bearer(token)
    )
    assert other_language.status_code == 201
    listed = await client.get(
        TEMPLATES, params={"status": "all", "name": "welcome_note"}, headers=bearer(token)
    )
    assert {t["language"] for t in listed.json()["data"]} == {"en", "it"}


async def test_invalid_templates_answer_422_naming_fields(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        TEMPLATES,
        json=new_template(
            name="Bad Name",
            language="xx",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "{{1}} {{2}}"},
                {"type": "BODY", "text": "{{1}} ends with {{2}}"},
                {"type": "FOOTER", "text": "No {{1}} here"},
            ],
        ),
        headers=bearer(token),
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    fields = {(e["field"], e["code"]) for e in problem["errors"]}
    assert fields == {
        ("name", "invalid_template_name"),
        ("language", "unknown_language"),
        ("components.0.text", "too_many_parameters"),
        ("components.1.text", "parameter_at_edge"),
        ("components.2.text", "parameters_not_allowed"),
    }
    wrong_type = await client.post(
        TEMPLATES,
        json=new_template(components=[{"type": "BANNER", "text": "x"}]),
        headers=bearer(token),
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["field"] == "components.0.type"


async def test_idempotency_key_replays_the_creation(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    headers = {**bearer(token), "Idempotency-Key": "tpl-1"}
    first = await client.post(TEMPLATES, json=new_template(), headers=headers)
    second = await client.post(TEMPLATES, json=new_template(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    reused = await client.post(TEMPLATES, json=new_template("other_name"), headers=headers)
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_key_reused"


async def test_production_accepts_and_leaves_pending(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user, base="")
    production = "/api/v4/notifications/whatsapp/templates"
    assert (await client.get(production, headers=bearer(token))).json()["data"] == []
    created = await client.post(production, json=new_template(), headers=bearer(token))
    assert created.status_code == 201 and created.json()["status"] == "PENDING"
    swept = await app.state.ctx.runtime.template_reviewer.sweep()
    assert swept == 0
    listed = await client.get(production, params={"status": "all"}, headers=bearer(token))
    assert [t["status"] for t in listed.json()["data"]] == ["PENDING"]
    # Sandbox data stays in the sandbox, and the reverse.
    sandbox_token = await login(client, user)
    sandbox = await client.get(
        TEMPLATES, params={"name": "welcome_note", "status": "all"}, headers=bearer(sandbox_token)
    )
    assert sandbox.json()["data"] == []


async def test_another_account_sees_none_of_ours(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    created = await client.post(TEMPLATES, json=new_template(), headers=bearer(token))
    assert created.status_code == 201
    other = await create_test_user(app, "grace@example.com")
    other_token = await login(client, other)
    theirs = await client.get(TEMPLATES, params={"status": "all"}, headers=bearer(other_token))
    ids = {t["id"] for t in theirs.json()["data"]}
    assert created.json()["id"] not in ids and len(ids) == 6
    mine = await client.get(TEMPLATES, params={"status": "all"}, headers=bearer(token))
    assert not ids & {t["id"] for t in mine.json()["data"]}
    # The same name is free in the other account.
    same = await client.post(TEMPLATES, json=new_template(), headers=bearer(other_token))
    assert same.status_code == 201
