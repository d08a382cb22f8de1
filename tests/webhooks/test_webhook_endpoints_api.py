"""Webhook endpoint management: create, list, read, update, delete, validation, SSRF."""

from __future__ import annotations

import httpx
import pytest

from tests.support.users import TestUser, bearer, login
from tests.webhooks.hook_receiver import Receiver

SBX = "/sandbox/api/v4/webhooks"
PROD = "/api/v4/webhooks"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


@pytest.fixture
async def prod_token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user, base="")


async def test_crud(client: httpx.AsyncClient, token: str, receiver: Receiver) -> None:
    created = await client.post(
        f"{SBX}/create",
        json={"url": receiver.url, "events": ["message.*"], "description": "orders"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("whk_") and body["status"] == "active"
    assert body["secret"].startswith("whsec_") and body["events"] == ["message.*"]
    hook = body["id"]

    read = await client.get(f"{SBX}/{hook}", headers=bearer(token))
    assert read.status_code == 200 and "secret" not in read.json()
    listed = await client.get(SBX, headers=bearer(token))
    assert [w["id"] for w in listed.json()["data"]] == [hook]
    assert "secret" not in listed.json()["data"][0]

    patched = await client.patch(
        f"{SBX}/{hook}",
        json={"events": ["message.delivered"], "description": None, "enabled": False},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"] == ["message.delivered"]
    assert patched.json()["description"] is None
    assert patched.json()["status"] == "disabled" and patched.json()["disabledReason"]
    enabled = await client.patch(f"{SBX}/{hook}", json={"enabled": True}, headers=bearer(token))
    assert enabled.json()["status"] == "active" and enabled.json()["disabledReason"] is None

    rotated = await client.post(f"{SBX}/{hook}/rotate-secret", headers=bearer(token))
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != body["secret"]
    assert rotated.json()["previousSecretExpiresAt"]

    deleted = await client.delete(f"{SBX}/{hook}", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await client.get(f"{SBX}/{hook}", headers=bearer(token))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert gone.headers["content-type"].startswith("application/problem+json")


async def test_environments_are_separate(
    client: httpx.AsyncClient, token: str, prod_token: str, receiver: Receiver
) -> None:
    created = await client.post(f"{SBX}/create", json={"url": receiver.url}, headers=bearer(token))
    assert created.json()["events"] == ["*"]
    hook = created.json()["id"]
    assert (await client.get(f"{PROD}/{hook}", headers=bearer(prod_token))).status_code == 404
    assert (await client.get(PROD, headers=bearer(prod_token))).json()["data"] == []


async def test_validation_errors(client: httpx.AsyncClient, token: str) -> None:
    missing = await client.post(f"{SBX}/create", json={}, headers=bearer(token))
    assert missing.status_code == 422
    assert missing.json()["code"] == "validation_failed"
    assert missing.json()["errors"][0]["field"] == "url"

    bad_event = await client.post(
        f"{SBX}/create",
        json={"url": "http://127.0.0.1:9/x", "events": ["message.delivered", "nope", "foo.*"]},
        headers=bearer(token),
    )
    assert bad_event.status_code == 422
    assert [e["field"] for e in bad_event.json()["errors"]] == ["events.1", "events.2"]

    for url in ("not a url", "ftp://example.com/x", "http://user:pw@127.0.0.1/x", "http://[::1"):
        answer = await client.post(f"{SBX}/create", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 422, url
        assert answer.json()["errors"][0]["field"] == "url"

    for method, path in (
        ("GET", f"{SBX}/whk_nope"),
        ("PATCH", f"{SBX}/whk_nope"),
        ("DELETE", f"{SBX}/whk_nope"),
        ("POST", f"{SBX}/whk_nope/test"),
        ("POST", f"{SBX}/whk_nope/rotate-secret"),
        ("GET", f"{SBX}/whk_nope/deliveries"),
        ("POST", f"{SBX}/whk_nope/deliveries/dlv_nope/retry"),
    ):
        answer = await client.request(
            method, path, headers=bearer(token), json={} if method == "PATCH" else None
        )
        assert answer.status_code == 404, (method, path)
        assert answer.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://100.64.0.1/hook",
        "https://[fd00:ec2::254]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
    ],
)
async def test_production_refuses_unsafe_urls(
    client: httpx.AsyncClient, prod_token: str, url: str
) -> None:
    answer = await client.post(f"{PROD}/create", json={"url": url}, headers=bearer(prod_token))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "unsafe_webhook_url"
    assert answer.json()["errors"][0]["field"] == "url"


async def test_production_refuses_unsafe_url_on_update(
    client: httpx.AsyncClient, prod_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tidings.webhooks import ssrf

    async def public(host: str, port: int) -> list[ssrf.IpAddress]:
        import ipaddress

        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr(ssrf, "resolve", public)
    created = await client.post(
        f"{PROD}/create", json={"url": "https://hooks.example.com/x"}, headers=bearer(prod_token)
    )
    assert created.status_code == 201, created.text
    monkeypatch.undo()
    patched = await client.patch(
        f"{PROD}/{created.json()['id']}",
        json={"url": "https://127.0.0.1/x"},
        headers=bearer(prod_token),
    )
    assert patched.json()["code"] == "unsafe_webhook_url"


async def test_sandbox_allows_loopback_when_enabled(client: httpx.AsyncClient, token: str) -> None:
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.1/x", "http://[::1]:9/x"):
        answer = await client.post(f"{SBX}/create", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 201, url
    metadata = await client.post(
        f"{SBX}/create", json={"url": "http://169.254.169.254/x"}, headers=bearer(token)
    )
    assert metadata.json()["code"] == "unsafe_webhook_url"
