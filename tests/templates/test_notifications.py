"""Template notifications: rendering, parameters (positional, named, media, buttons),
the closed window of +15550000006, opt-outs, errors, credits and isolation."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.core.ids import new_id
from tidings.credits.repository import CreditRepository
from tidings.messages.repository import MessageRepository
from tidings.templates.models import Template
from tidings.templates.seed_data import SEED
from tidings.templates.shape import parameter_format_of

SEND = "/sandbox/api/v4/whatsapp/notifications"
IMAGE = "https://example.com/spring.jpg"


def notification(
    name: str, parameters: dict[str, Any], *, to: str = "+393331234567", language: str = "en"
) -> dict[str, Any]:
    return {"to": to, "template": {"name": name, "language": language, "parameters": parameters}}


async def stored_content(app: FastAPI, message_id: str) -> dict[str, Any]:
    async with app.state.ctx.sessions() as session:
        message = await MessageRepository(session).get_by_id(message_id)
    assert message is not None
    return dict(message.content)


async def test_order_update_is_rendered_and_delivered(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        SEND,
        json=notification("order_update", {"header": ["#1234"], "body": ["Ada", "#1234"]}),
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    message = answer.json()
    assert message["channel"] == "whatsapp" and message["status"] == "sent"
    assert message["credits"] == 0.0
    assert message["body"] == (
        "Order #1234\n\nHi Ada, your order #1234 has shipped and is on its way to you."
        "\n\nReply STOP to opt out"
    )
    template = (await stored_content(app, message["id"]))["template"]
    assert (template["name"], template["language"], template["category"]) == (
        "order_update",
        "en",
        "UTILITY",
    )
    assert template["parameters"] == {"header": ["#1234"], "body": ["Ada", "#1234"]}
    assert template["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "#1234"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"}],
        },
    ]
    await wait_for(client, token, message["id"], {"read"})


async def test_closed_window_refuses_free_form_but_not_templates(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    free_form = await client.post(
        "/sandbox/api/v4/whatsapp/chats/+15550000006/message",
        json={"body": "Hi"},
        headers=bearer(token),
    )
    assert free_form.status_code == 422
    assert free_form.json()["code"] == "outside_customer_service_window"
    templated = await client.post(
        SEND,
        json=notification(
            "order_update", {"header": ["#9"], "body": ["Ada", "#9"]}, to="+15550000006"
        ),
        headers=bearer(token),
    )
    assert templated.status_code == 200, templated.text
    final = await wait_for(client, token, templated.json()["id"], {"read"})
    assert [e["status"] for e in final["events"] if e["applied"]] == [
        "queued",
        "sent",
        "delivered",
        "read",
    ]


async def test_named_template_with_media_header_and_url_button(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    for header in ({"type": "image", "url": IMAGE}, IMAGE, [IMAGE]):
        answer = await client.post(
            SEND,
            json=notification(
                "spring_offer",
                {"header": header, "body": {"first_name": "Ada"}, "buttons": ["ada-42"]},
                language="it",
            ),
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["body"].startswith("Ciao Ada, è arrivata la primavera!")
    template = (await stored_content(app, answer.json()["id"]))["template"]
    assert template["parameterFormat"] == "NAMED"
    assert template["parameters"] == {
        "header": [{"type": "image", "url": IMAGE}],
        "body": {"first_name": "Ada"},
        "buttons": ["ada-42"],
    }
    assert template["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": IMAGE}}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ada", "parameter_name": "first_name"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "ada-42"}],
        },
    ]


async def test_one_time_code_copies_the_code_to_its_button(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        SEND, json=notification("one_time_code", {"body": [482913]}), headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["body"].startswith("482913 is your verification code.")
    components = (await stored_content(app, answer.json()["id"]))["template"]["components"]
    assert components[-1] == {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": "482913"}],
    }


@pytest.mark.parametrize(
    ("name", "parameters", "field", "words"),
    [
        (
            "order_update",
            {"body": ["Ada", "#1"]},
            "header",
            "The header takes 1 parameter; 0 given",
        ),
        (
            "order_update",
            {"header": ["#1", "#2"], "body": ["Ada", "#1"]},
            "header",
            "The header takes 1 parameter; 2 given",
        ),
        (
            "order_update",
            {"header": ["#1"], "body": ["Ada"]},
            "body",
            "takes 2 parameters; 1 given",
        ),
        (
            "order_update",
            {"header": ["#1"], "body": {"name": "Ada"}},
            "body",
            "The body takes positional parameters",
        ),
        (
            "order_update",
            {"header": ["#1"], "body": ["Ada", "#1"], "buttons": ["x"]},
            "buttons",
            "The buttons take 0 parameters; 1 given",
        ),
        (
            "spring_offer",
            {"header": IMAGE, "body": {"first_name": "Ada"}},
            "buttons",
            "The buttons take 1 parameter, one each for button 2 (URL 'Shop now'); 0 given",
        ),
        (
            "spring_offer",
            {"header": IMAGE, "body": {"name": "Ada"}, "buttons": ["x"]},
            "body",
            "missing: first_name; unknown: name",
        ),
        (
            "spring_offer",
            {"body": {"first_name": "Ada"}, "buttons": ["x"]},
            "header",
            "The IMAGE header takes 1 parameter, the image to show",
        ),
        (
            "spring_offer",
            {
                "header": {"type": "video", "url": IMAGE},
                "body": {"first_name": "Ada"},
                "buttons": ["x"],
            },
            "header.0",
            "takes an image, not a video",
        ),
        (
            "order_update",
            {"header": ["#1"], "body": ["Ada", "line\nbreak"]},
            "body.1",
            "may not hold new lines",
        ),
    ],
)
async def test_parameter_mismatches_are_precise(
    client: httpx.AsyncClient,
    user: TestUser,
    name: str,
    parameters: dict[str, Any],
    field: str,
    words: str,
) -> None:
    token = await login(client, user)
    answer = await client.post(SEND, json=notification(name, parameters), headers=bearer(token))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "template_params_mismatch"
    assert words in problem["detail"]
    assert f"template.parameters.{field}" in [e["field"] for e in problem["errors"]]


async def test_unknown_template_opted_out_and_bad_numbers(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    unknown = await client.post(
        SEND, json=notification("order_update", {}, language="de"), headers=bearer(token)
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "template_not_found"
    assert "It exists in: en, it." in unknown.json()["detail"]
    nowhere = await client.post(SEND, json=notification("nothing", {}), headers=bearer(token))
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "template_not_found"
    opted_out = await client.post(
        SEND,
        json=notification("one_time_code", {"body": ["1"]}, to="+15550000005"),
        headers=bearer(token),
    )
    assert opted_out.status_code == 422 and opted_out.json()["code"] == "recipient_opted_out"
    bad_number = await client.post(
        SEND, json=notification("one_time_code", {"body": ["1"]}, to="12"), headers=bearer(token)
    )
    assert bad_number.json()["code"] == "invalid_phone_number"


async def _production_whatsapp(app: FastAPI, user: TestUser) -> None:
    """A production account with the simulator and the seed set approved there
    (as syncing from a WhatsApp Business account would leave it)."""
    now = datetime.now(UTC)
    await add_provider(app, user.account_id, "whatsapp")
    async with app.state.ctx.sessions() as session:
        await CreditRepository(session).add(user.account_id, Decimal(10), reason="top-up", at=now)
        for name, language, category, components in SEED:
            session.add(
                Template(
                    id=new_id("tpl"),
                    account_id=user.account_id,
                    environment="production",
                    name=name,
                    language=language,
                    category=category,
                    status="APPROVED",
                    parameter_format=parameter_format_of(components),
                    components=components,
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()


async def test_production_charges_by_category(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _production_whatsapp(app, user)
    token = await login(client, user, base="")
    sends = {
        "spring_offer": {"header": IMAGE, "body": {"first_name": "Ada"}, "buttons": ["a"]},
        "order_update": {"header": ["#1"], "body": ["Ada", "#1"]},
        "one_time_code": {"body": ["123456"]},
    }
    charged = {}
    for name, parameters in sends.items():
        answer = await client.post(
            "/api/v4/whatsapp/notifications",
            json=notification(name, parameters),
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
        charged[name] = answer.json()["credits"]
    assert charged == {"spring_offer": 1.5, "order_update": 1.0, "one_time_code": 0.8}
    account = await client.get("/api/v4/account", headers=bearer(token))
    assert float(account.json()["credits"]) == pytest.approx(10 - 3.3)


async def test_templates_belong_to_one_account_and_environment(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    now = datetime.now(UTC)
    await add_provider(app, user.account_id, "whatsapp")
    production = await login(client, user, base="")
    # The sandbox's seed set is not in production.
    answer = await client.post(
        "/api/v4/whatsapp/notifications",
        json=notification("order_update", {"header": ["#1"], "body": ["Ada", "#1"]}),
        headers=bearer(production),
    )
    assert answer.status_code == 404 and answer.json()["code"] == "template_not_found"
    # Another account's own template is invisible here.
    other = await create_test_user(app, "grace@example.com")
    async with app.state.ctx.sessions() as session:
        session.add(
            Template(
                id=new_id("tpl"),
                account_id=other.account_id,
                environment="sandbox",
                name="grace_only",
                language="en",
                category="UTILITY",
                status="APPROVED",
                parameter_format="POSITIONAL",
                components=[{"type": "BODY", "text": "Only for Grace's customers."}],
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    mine = await login(client, user)
    refused = await client.post(SEND, json=notification("grace_only", {}), headers=bearer(mine))
    assert refused.status_code == 404 and refused.json()["code"] == "template_not_found"
    theirs = await login(client, other)
    accepted = await client.post(SEND, json=notification("grace_only", {}), headers=bearer(theirs))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["body"] == "Only for Grace's customers."
