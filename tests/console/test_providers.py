"""The providers pages: a kind's form from its config model, validation errors next
to the fields, secrets never shown, the check, the sandbox's refusal, scoping and
CSRF."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.console.support import form_token, sign_in, signed_in_token
from tests.support.providers import add_provider
from tests.support.users import TestUser, create_test_user
from tidings.core.environments import Environment
from tidings.core.tenancy import TenantScope


async def test_the_smpp_form_is_built_from_its_model(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    page = await client.get("/console/providers/new", params={"pick": "sms:smpp"})
    assert page.status_code == 200
    text = page.text
    # Every field of the model, by its wire name, with its input and what it takes.
    assert 'name="config.systemId"' in text
    assert 'id="cfg-port" name="config.port" value="2775"' in text
    assert 'type="number" step="1"' in text
    assert re.search(r'name="config.password" type="password" value=""', text)
    assert '<option value="sar">sar</option>' in text  # a Literal is a choice
    assert 'name="config.tls" type="checkbox"' in text
    assert "At least 1, at most 65535, default 2775." in text
    assert "(required)" in text


async def test_invalid_config_is_shown_next_to_its_field(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    token = await signed_in_token(client)
    answer = await client.post(
        "/console/providers/new",
        data={
            "csrf": token,
            "channel": "sms",
            "kind": "smpp",
            "name": "Operator",
            "priority": "1",
            "enabled": "on",
            "config.host": "smsc.example.net",
            "config.port": "99999",
            "config.systemId": "tidings",
            "config.password": "s3cret",
        },
    )
    assert answer.status_code == 422
    text = answer.text
    assert 'aria-invalid="true"' in text
    port_note = re.search(r'<p class="note" id="cfg-port-note">(.*?)</p>', text, re.S)
    assert port_note and "less than or equal to 65535" in port_note.group(1)
    # What was typed comes back, except the secret.
    assert 'value="smsc.example.net"' in text
    assert "s3cret" not in text


async def test_create_check_edit_keeps_the_secret(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    token = await signed_in_token(client)
    made = await client.post(
        "/console/providers/new",
        data={
            "csrf": token,
            "channel": "sms",
            "kind": "smpp",
            "name": "Operator",
            "priority": "2",
            "enabled": "on",
            "config.host": "127.0.0.1",
            "config.port": "1",
            "config.systemId": "tidings",
            "config.password": "s3cret",
            "config.responseTimeoutSeconds": "1",
        },
    )
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    provider_id = location.split("/")[-1].split("?")[0]
    page = await client.get(location)
    assert "The provider was added." in page.text
    assert "s3cret" not in page.text
    assert "A value is stored and never shown: leave empty to keep it." in page.text

    # Saved with the password left empty: the stored one stays.
    saved = await client.post(
        f"/console/providers/{provider_id}",
        data={
            "csrf": token,
            "name": "Operator two",
            "priority": "3",
            "enabled": "on",
            "config.host": "127.0.0.1",
            "config.port": "1",
            "config.systemId": "tidings",
            "config.password": "",
            "config.responseTimeoutSeconds": "1",
        },
    )
    assert saved.status_code == 303, saved.text
    row = await app.state.ctx.runtime.provider_service.row(
        TenantScope(user.account_id, Environment.PRODUCTION), provider_id
    )
    assert row.name == "Operator two" and row.priority == 3
    assert set(row.secrets) == {"password"}
    assert row.config["registeredDelivery"] is False  # an unticked box is false

    # The check's answer is on the page; nothing listens on port 1.
    checked = await client.post(f"/console/providers/{provider_id}/check", data={"csrf": token})
    assert checked.status_code == 200
    assert 'id="check-answer"' in checked.text and ">failed<" in checked.text


async def test_the_sandbox_refuses_changes_and_says_why(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user, base="/sandbox")
    listed = await client.get("/sandbox/console/providers")
    assert listed.status_code == 200
    assert "The sandbox&#39;s providers are simulated" in listed.text
    assert "Add a provider" not in listed.text
    token = form_token(listed.text)
    refused = await client.post(
        "/sandbox/console/providers/new",
        data={"csrf": token, "channel": "sms", "kind": "simulator", "name": "Mine"},
    )
    assert refused.status_code == 409
    assert "cannot be changed" in refused.text

    # A simulated provider's page: its check answers, and no form changes it.
    page = await client.get("/sandbox/console/providers/prv_sandbox_sms")
    assert page.status_code == 200
    assert "Check the connection" in page.text and "Save" not in page.text
    checked = await client.post(
        "/sandbox/console/providers/prv_sandbox_sms/check", data={"csrf": token}
    )
    assert "The sandbox&#39;s simulated network is always there." in checked.text
    refused_delete = await client.post(
        "/sandbox/console/providers/prv_sandbox_sms/delete", data={"csrf": token}
    )
    assert refused_delete.status_code == 409


async def test_scoped_to_account_and_environment_and_csrf(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await create_test_user(app, "grace@example.com")
    theirs = await add_provider(app, other.account_id, "sms")
    mine = await add_provider(app, user.account_id, "sms")
    await sign_in(client, user)
    token = await signed_in_token(client)

    assert (await client.get(f"/console/providers/{mine}")).status_code == 200
    assert (await client.get(f"/console/providers/{theirs}")).status_code == 404
    assert (await client.get(f"/sandbox/console/providers/{mine}")).status_code == 404
    for action in ("", "/check", "/delete"):
        answer = await client.post(f"/console/providers/{theirs}{action}", data={"csrf": token})
        assert answer.status_code == 404, action
    listed = await client.get("/console/providers")
    assert mine in listed.text and theirs not in listed.text

    # Without the session's token nothing is changed.
    refused = await client.post(f"/console/providers/{mine}/delete", data={})
    assert refused.status_code == 403
    assert (await client.get(f"/console/providers/{mine}")).status_code == 200
    removed = await client.post(f"/console/providers/{mine}/delete", data={"csrf": token})
    assert removed.status_code == 303
    assert (await client.get(f"/console/providers/{mine}")).status_code == 404
