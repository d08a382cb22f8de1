"""The providers API end to end (spec section 13): create, list, read, update, delete and
check; 422 naming the fields; the sandbox's simulated providers; tenant isolation; and
a secret (of the ``secretive`` test kind) that never appears in an answer, a log record
or the SQLite database file in clear."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.fakes.secretive import GOOD_KEY
from tests.providers.helpers import (
    FAST,
    app_running,
    eventually,
    production_token,
    provider,
    read,
    send,
)
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.providers.models import ProviderRow
from tidings.settings import Settings

API = "/api/v4/providers"


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url, **FAST)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings) as application:
        yield application


MASK = "********"


async def create(
    client: httpx.AsyncClient, token: str, expect: int = 201, **body: Any
) -> dict[str, Any]:
    answer = await client.post(API, json=body, headers=bearer(token))
    assert answer.status_code == expect, answer.text
    return dict(answer.json())


async def test_create_list_read_update_check_delete(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await production_token(app, client, user)
    made = await create(client, token, channel="sms", kind="simulator", name="Staging", config={})
    assert made["id"].startswith("prv_")
    assert (made["channel"], made["kind"], made["name"]) == ("sms", "simulator", "Staging")
    assert (made["priority"], made["enabled"], made["health"]) == (1, True, "unknown")
    assert made["lastError"] is None and made["config"]["scenario"] == "normal"
    assert made["createdAt"] and made["updatedAt"]

    second = await create(client, token, channel="email", kind="simulator", name="Mail", priority=5)
    listed = await client.get(API, headers=bearer(token))
    assert listed.status_code == 200
    assert sorted(p["id"] for p in listed.json()["data"]) == sorted([made["id"], second["id"]])
    assert await provider(client, token, made["id"]) == made

    changed = await client.patch(
        f"{API}/{made['id']}",
        json={"name": "Renamed", "priority": 3, "config": {"scenario": "credentials_refused"}},
        headers=bearer(token),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Renamed" and changed.json()["priority"] == 3
    assert changed.json()["config"]["scenario"] == "credentials_refused"

    refused = await client.post(f"{API}/{made['id']}/check", headers=bearer(token))
    assert refused.status_code == 200
    assert refused.json()["ok"] is False
    assert "refused the credentials" in refused.json()["detail"]
    seen = await provider(client, token, made["id"])
    assert seen["health"] == "failing" and seen["lastError"]["code"] == "check_failed"

    await client.patch(
        f"{API}/{made['id']}", json={"config": {"scenario": "normal"}}, headers=bearer(token)
    )
    checked = await client.post(f"{API}/{made['id']}/check", headers=bearer(token))
    assert checked.json()["ok"] is True and checked.json()["latencyMs"] >= 0
    assert "nothing was sent" in checked.json()["detail"]
    assert (await provider(client, token, made["id"]))["health"] == "ok"

    # The provider works: a message goes through it and names it.
    sent = await send(client, token, wait=True)
    assert sent["providerId"] == made["id"]
    await wait_for(client, token, sent["id"], {"delivered"}, base="")

    # Its messages are final: deleted for good.
    gone = await client.delete(f"{API}/{made['id']}", headers=bearer(token))
    assert gone.status_code == 204 and gone.content == b""
    assert (await client.get(f"{API}/{made['id']}", headers=bearer(token))).status_code == 404
    again = await client.delete(f"{API}/{made['id']}", headers=bearer(token))
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    async with app.state.ctx.sessions() as session:
        assert await session.get(ProviderRow, made["id"]) is None


async def test_a_provider_with_messages_in_flight_is_disabled_not_deleted(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await production_token(app, client, user)
    # A network that keeps asking to slow down: its message waits, never final.
    silent = await add_provider(app, user.account_id, "sms", config={"scenario": "throttled"})
    sent = await send(client, token)

    async def retried() -> bool:
        answer = await read(client, token, sent["id"])
        return bool(answer["providerId"] == silent and answer["status"] == "queued")

    await eventually(retried, "the message was tried on the silent provider")
    answer = await client.delete(f"{API}/{silent}", headers=bearer(token))
    assert answer.status_code == 204
    assert (await client.get(f"{API}/{silent}", headers=bearer(token))).status_code == 404
    listed = (await client.get(API, headers=bearer(token))).json()["data"]
    assert silent not in [p["id"] for p in listed]
    async with app.state.ctx.sessions() as session:
        row = await session.get(ProviderRow, silent)
        assert row is not None, "a provider with a message in flight was removed"
        assert row.enabled is False and row.deleted_at is not None
    # A new provider of the channel takes the waiting message.
    fresh = await add_provider(app, user.account_id, "sms", priority=2)
    done = await wait_for(client, token, sent["id"], {"delivered"}, base="")
    assert done["providerId"] == fresh


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "carrier-pigeon", "config": {}}, ["kind"]),
        ({"kind": "simulator", "config": {"scenario": "on-fire"}}, ["config.scenario"]),
        ({"kind": "simulator", "config": {"colour": "red"}}, ["config.colour"]),
        ({"kind": "secretive", "config": {}}, ["config.apiKey"]),
        (
            {"kind": "secretive", "config": {"apiKey": 7, "extra": 1}},
            ["config.apiKey", "config.extra"],
        ),
    ],
    ids=["unknown-kind", "bad-value", "unknown-field", "missing-secret", "two-bad-fields"],
)
async def test_bad_kind_or_config_answers_422_naming_the_fields(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    token = await production_token(app, client, user)
    problem = await create(client, token, 422, channel="sms", name="x", **body)
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert sorted(error["field"] for error in problem["errors"]) == sorted(fields)
    assert (await client.get(API, headers=bearer(token))).json()["data"] == []
    # And on update: nothing is changed.
    made = await add_provider(app, user.account_id, "sms")
    patched = await client.patch(
        f"{API}/{made}", json={"config": {"scenario": "on-fire"}}, headers=bearer(token)
    )
    assert patched.status_code == 422
    assert [e["field"] for e in patched.json()["errors"]] == ["config.scenario"]
    assert (await provider(client, token, made))["config"]["scenario"] == "normal"


async def test_the_sandbox_lists_its_simulated_providers_and_refuses_changes(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    sbx = f"/sandbox{API}"
    listed = (await client.get(sbx, headers=bearer(token))).json()["data"]
    assert sorted(p["channel"] for p in listed) == ["email", "sms", "whatsapp"]
    assert {p["kind"] for p in listed} == {"sandbox"}
    assert {p["health"] for p in listed} == {"ok"}
    one = listed[0]["id"]
    assert (await client.get(f"{sbx}/{one}", headers=bearer(token))).json() == listed[0]
    checked = await client.post(f"{sbx}/{one}/check", headers=bearer(token))
    assert checked.status_code == 200 and checked.json()["ok"] is True
    unmatched = await client.get(f"{sbx}/{one}/unmatched", headers=bearer(token))
    assert unmatched.status_code == 200 and unmatched.json()["data"] == []
    for answer in (
        await client.post(
            sbx, json={"channel": "sms", "kind": "simulator", "name": "x"}, headers=bearer(token)
        ),
        await client.patch(f"{sbx}/{one}", json={"name": "y"}, headers=bearer(token)),
        await client.delete(f"{sbx}/{one}", headers=bearer(token)),
    ):
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "sandbox_is_simulated"
    # The production side of the same account has none of them.
    production = await login(client, user, base="")
    assert (await client.get(API, headers=bearer(production))).json()["data"] == []
    assert (await client.get(f"{API}/{one}", headers=bearer(production))).status_code == 404


async def test_another_account_sees_nothing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await production_token(app, client, user)
    mine = await add_provider(app, user.account_id, "sms")
    other = await login(client, await create_test_user(app, "eve@example.com"), base="")
    assert (await client.get(API, headers=bearer(other))).json()["data"] == []
    for method, path, body in (
        ("GET", f"{API}/{mine}", None),
        ("PATCH", f"{API}/{mine}", {"name": "mine now"}),
        ("DELETE", f"{API}/{mine}", None),
        ("POST", f"{API}/{mine}/check", None),
        ("GET", f"{API}/{mine}/unmatched", None),
    ):
        answer = await client.request(method, path, json=body, headers=bearer(other))
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "not_found"
    kept = await provider(client, token, mine)
    assert kept["name"] != "mine now" and kept["enabled"] is True


def _database_bytes(settings: Settings) -> bytes:
    url = settings.effective_database_url
    path = Path(url.removeprefix("sqlite+aiosqlite:///"))
    found = b""
    for name in (path.name, path.name + "-wal", path.name + "-journal"):
        candidate = path.with_name(name)
        if candidate.exists():
            found += candidate.read_bytes()
    assert found, f"no database file at {path}"
    return found


async def test_a_secret_never_appears_in_answers_logs_or_the_database(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await production_token(app, client, user)
    first = GOOD_KEY + secrets.token_hex(16)
    second = GOOD_KEY + secrets.token_hex(16)
    wrong = "nope-" + secrets.token_hex(16)
    answers: list[httpx.Response] = []

    async def call(
        method: str, path: str, body: Any = None, expect: int = 200, **headers: str
    ) -> Any:
        answer = await client.request(method, path, json=body, headers={**bearer(token), **headers})
        assert answer.status_code == expect, answer.text
        answers.append(answer)
        return answer.json() if answer.content else None

    body = {"channel": "sms", "kind": "secretive", "name": "Keyed", "config": {"apiKey": first}}
    # Refused bodies that carry the secret: the problem answers must not echo it.
    for bad in (
        {**body, "name": ""},
        {**body, "channel": "fax"},
        {key: value for key, value in body.items() if key != "name"},
        {**body, "config": {"apiKey": first, "scenario": "on-fire"}},
        {**body, "config": {"apiKey": first, "colour": "red"}},
    ):
        await call("POST", API, bad, 422)
    made = await call("POST", API, body, 201, **{"Idempotency-Key": "keyed-1"})
    pid = made["id"]
    assert made["config"] == {"apiKey": MASK, "scenario": "normal"}
    # A replay of the same create answers the stored answer, masked as well.
    replayed = await call("POST", API, body, 201, **{"Idempotency-Key": "keyed-1"})
    assert replayed == made
    assert (await call("GET", API))["data"][0]["config"]["apiKey"] == MASK
    assert (await call("POST", f"{API}/{pid}/check"))["ok"] is True

    # Left out, or sent back masked: kept (the key still works).
    assert (await call("PATCH", f"{API}/{pid}", {"name": "Renamed"}))["config"]["apiKey"] == MASK
    await call("PATCH", f"{API}/{pid}", {"config": {"scenario": "normal"}})
    assert (await call("POST", f"{API}/{pid}/check"))["ok"] is True
    await call("PATCH", f"{API}/{pid}", {"config": {"apiKey": MASK, "scenario": "normal"}})
    assert (await call("POST", f"{API}/{pid}/check"))["ok"] is True
    sent = await send(client, token, wait=True)
    assert sent["providerId"] == pid
    await wait_for(client, token, sent["id"], {"delivered"}, base="")

    # Replaced: a wrong key is refused by the network, the right one accepted again.
    await call("PATCH", f"{API}/{pid}", {"config": {"apiKey": wrong}})
    refused = await call("POST", f"{API}/{pid}/check")
    assert refused["ok"] is False and "refused" in refused["detail"]
    await call("PATCH", f"{API}/{pid}", {"config": {"apiKey": second}})
    assert (await call("POST", f"{API}/{pid}/check"))["ok"] is True
    problem = await call("PATCH", f"{API}/{pid}", {"config": {"apiKey": 12}}, 422)
    assert [e["field"] for e in problem["errors"]] == ["config.apiKey"]
    await call("GET", f"{API}/{pid}")
    await call("GET", f"{API}/{pid}/unmatched")
    async with app.state.ctx.sessions() as session:
        row = await session.scalar(select(ProviderRow).where(ProviderRow.id == pid))
        assert row is not None and set(row.secrets) == {"apiKey"}
        assert row.secrets["apiKey"].startswith("enc:") and "apiKey" not in row.config
    await call("DELETE", f"{API}/{pid}", expect=204)

    for value in (first, second, wrong):
        for answer in answers:
            assert value not in answer.text, f"a secret in the answer to {answer.request.url}"
        assert value not in caplog.text, "a secret in the log"
        for record in caplog.records:
            assert value not in repr(record.args), "a secret in a log record's arguments"
    assert len(caplog.records) > 0, "nothing was logged: the log check proved nothing"
    stored = _database_bytes(settings)
    for value in (first, second, wrong):
        assert value.encode() not in stored, "a secret in clear in the database file"
    # Sanity: the file search finds what is there in clear (the provider's name).
    assert b"Renamed" in stored
