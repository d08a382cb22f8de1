"""Templates from the business account: synced over every page when the provider is
checked, Meta's status webhooks applied (``template.updated``), and template
notifications built from them, sent as Graph's template JSON; parameters Meta
would refuse are answered 422 before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import eventually, read
from tests.providers.whatsapp_cloud import meta_examples
from tests.providers.whatsapp_cloud.conftest import Business, outbox
from tests.support.users import bearer

TEMPLATES = "/api/v4/notifications/whatsapp/templates"

ORDER_UPDATE: dict[str, Any] = {
    "id": "1627019861106475",
    "name": "order_update",
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order {{2}} has shipped and is on its way to you.",
            "example": {"body_text": [["Ada", "#1234"]]},
        },
        {"type": "FOOTER", "text": "Reply STOP to opt out"},
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Track",
                    "url": "https://shop.example.com/track/{{1}}",
                    "example": ["https://shop.example.com/track/1234"],
                },
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550783881"},
            ],
        },
    ],
}
SPRING: dict[str, Any] = {
    "id": "1627019861106476",
    "name": "spring_offer",
    "language": "it",
    "status": "APPROVED",
    "category": "MARKETING",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://x/y.jpg"]}},
        {
            "type": "BODY",
            "text": "Ciao {{first_name}}, è arrivata la primavera: sconti in tutto il negozio.",
            "example": {"body_text_named_params": [{"param_name": "first_name", "example": "A"}]},
        },
    ],
}


def filler(count: int) -> list[dict[str, Any]]:
    statuses = ["APPROVED", "PENDING", "REJECTED", "PAUSED", "IN_APPEAL", "DISABLED"]
    return [
        {
            "id": str(2_000_000 + index),
            "name": f"promo_{index:03d}",
            "language": "en_US",
            "status": statuses[index % len(statuses)],
            "category": "MARKETING",
            "rejected_reason": "INVALID_FORMAT" if index % len(statuses) == 2 else "NONE",
            "components": [
                {"type": "BODY", "text": f"Our offer number {index} is waiting for you today."}
            ],
        }
        for index in range(count)
    ]


async def listed(client: httpx.AsyncClient, token: str, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "100", **params}
    while True:
        answer = await client.get(TEMPLATES, params=query, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        found.extend(answer.json()["data"])
        cursor = answer.json().get("nextCursor")
        if not cursor:
            return found
        query["after"] = cursor


async def synced(client: httpx.AsyncClient, business: Business) -> None:
    answer = await client.post(
        f"/api/v4/providers/{business.provider_id}/check", headers=bearer(business.token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True, answer.json()


async def test_sync_reads_every_page_and_lists_the_approved(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [ORDER_UPDATE, SPRING, *filler(248)]
    # The fixture's first sync read the catalog (empty then) once.
    first = [r for r in graph.requests if r.path.endswith("/message_templates")]
    await synced(client, business)

    async def all_there() -> bool:
        return len(await listed(client, business.token, status="all")) == 250

    await eventually(all_there, "250 templates synced")
    pages = [r for r in graph.requests if r.path.endswith("/message_templates")]
    assert len(pages) - len(first) == 3
    approved = await listed(client, business.token)
    names = {(t["name"], t["language"]) for t in approved}
    assert ("order_update", "en_US") in names and ("spring_offer", "it") in names
    assert len(approved) == 2 + len([t for t in filler(248) if t["status"] == "APPROVED"])
    rejected = await listed(client, business.token, status="REJECTED")
    assert rejected and all(t["rejectedReason"] == "INVALID_FORMAT" for t in rejected)
    # IN_APPEAL is still pending for us.
    pending = await listed(client, business.token, status="PENDING")
    assert len(pending) == len([t for t in filler(248) if t["status"] in ("PENDING", "IN_APPEAL")])
    order = next(t for t in approved if t["name"] == "order_update")
    buttons = next(c for c in order["components"] if c["type"] == "BUTTONS")["buttons"]
    assert buttons[1]["phoneNumber"] == "+15550783881"
    assert buttons[0]["parameterCount"] == 1

    # A second sync changes nothing and fires nothing.
    before = len(await outbox(app, business.user.account_id))
    await app.state.ctx.runtime.template_sync.sync_all()
    assert len(await outbox(app, business.user.account_id)) == before


async def test_status_webhooks_update_templates_and_fire_template_updated(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [{**ORDER_UPDATE, "name": "welcome_template", "status": "PENDING"}]
    await synced(client, business)

    async def pending() -> bool:
        return len(await listed(client, business.token, status="PENDING")) == 1

    await eventually(pending, "synced as PENDING")
    # Meta approves it (its catalog says so from now on), then tells us.
    graph.templates[0]["status"] = "APPROVED"
    answer = await graph.post_webhook(meta_examples.for_fake(meta_examples.TEMPLATE_APPROVED))
    assert answer.status_code == 200
    # Applied before the 200.
    (approved,) = await listed(client, business.token, name="welcome_template")
    assert approved["status"] == "APPROVED"
    events = [
        e for e in await outbox(app, business.user.account_id) if e.type == "template.updated"
    ]
    assert events[-1].payload["status"] == "APPROVED"
    assert events[-1].payload["name"] == "welcome_template"
    # Meta repeats itself: nothing new.
    await graph.post_webhook(meta_examples.for_fake(meta_examples.TEMPLATE_APPROVED))
    again = [e for e in await outbox(app, business.user.account_id) if e.type == "template.updated"]
    assert len(again) == len(events)


async def test_a_template_notification_is_sent_as_graph_template_json(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [ORDER_UPDATE, SPRING]
    await synced(client, business)

    async def approved() -> bool:
        return len(await listed(client, business.token)) == 2

    await eventually(approved, "templates synced")
    # Outside any window: templates are what it is for.
    answer = await client.post(
        "/api/v4/whatsapp/notifications",
        json={
            "to": "+393331112222",
            "template": {
                "name": "order_update",
                "language": "en_US",
                "parameters": {"header": ["#1234"], "body": ["Ada", "#1234"], "buttons": ["1234"]},
            },
        },
        headers=bearer(business.token),
    )
    assert answer.status_code in (200, 202), answer.text
    message_id = answer.json()["id"]

    async def read_back() -> bool:
        return bool((await read(client, business.token, message_id))["status"] == "read")

    await eventually(read_back, "template message read")
    (sent,) = graph.sent()
    assert sent["type"] == "template"
    assert sent["to"] == "393331112222"
    assert sent["template"] == {
        "name": "order_update",
        "language": {"code": "en_US", "policy": "deterministic"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "#1234"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1234"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "1234"}],
            },
        ],
    }

    named = await client.post(
        "/api/v4/whatsapp/notifications",
        json={
            "to": "+393331112222",
            "template": {
                "name": "spring_offer",
                "language": "it",
                "parameters": {
                    "header": {"type": "image", "url": "https://cdn.example.com/spring.jpg"},
                    "body": {"first_name": "Ada"},
                },
            },
        },
        headers=bearer(business.token),
    )
    assert named.status_code in (200, 202), named.text

    async def two_sent() -> bool:
        return len(graph.sent()) == 2

    await eventually(two_sent, "the named template sent")
    assert graph.sent()[1]["template"]["components"] == [
        {
            "type": "header",
            "parameters": [
                {"type": "image", "image": {"link": "https://cdn.example.com/spring.jpg"}}
            ],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ada", "parameter_name": "first_name"}],
        },
    ]


async def test_parameters_meta_would_refuse_are_422_before_anything_is_sent(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [ORDER_UPDATE]
    await synced(client, business)

    async def approved() -> bool:
        return len(await listed(client, business.token)) == 1

    await eventually(approved, "template synced")
    answer = await client.post(
        "/api/v4/whatsapp/notifications",
        json={
            "to": "+393331112222",
            "template": {
                "name": "order_update",
                "language": "en_US",
                "parameters": {"header": ["#1234"], "body": ["Ada"], "buttons": ["1234"]},
            },
        },
        headers=bearer(business.token),
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "template_params_mismatch"
    assert graph.sent() == []


async def test_a_production_template_is_submitted_to_the_business_account(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    created = await client.post(
        TEMPLATES,
        json={
            "name": "welcome_template",
            "language": "en_US",
            "category": "MARKETING",
            "components": [
                {"type": "BODY", "text": "Welcome {{1}}, we are glad to have you with us today."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "PHONE_NUMBER", "text": "Call", "phoneNumber": "+15550783881"}
                    ],
                },
            ],
        },
        headers=bearer(business.token),
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "PENDING"
    (submitted,) = [
        r.body
        for r in graph.requests
        if r.method == "POST" and r.path.endswith("/message_templates")
    ]
    assert submitted["name"] == "welcome_template"
    assert submitted["language"] == "en_US"
    assert submitted["category"] == "MARKETING"
    assert submitted["parameter_format"] == "POSITIONAL"
    body, buttons = submitted["components"]
    assert body["type"] == "BODY" and "{{1}}" in body["text"]
    assert buttons["buttons"] == [
        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550783881"}
    ]
    # Meta approves it, and says so.
    graph.templates[0]["status"] = "APPROVED"
    await graph.post_webhook(meta_examples.for_fake(meta_examples.TEMPLATE_APPROVED))
    (shown,) = await listed(client, business.token, name="welcome_template")
    assert shown["status"] == "APPROVED" and shown["id"] == created.json()["id"]


async def test_meta_refusing_a_template_is_422_and_nothing_is_kept(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    # Made in Meta's Business Manager, not synced here yet.
    graph.templates = [{**ORDER_UPDATE, "name": "welcome_template"}]
    answer = await client.post(
        TEMPLATES,
        json={
            "name": "welcome_template",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Welcome, we are glad to have you here."}],
        },
        headers=bearer(business.token),
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "template_refused"
    assert "already exists" in answer.json()["detail"]
    assert await listed(client, business.token, status="PENDING") == []


async def test_sync_on_demand(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [ORDER_UPDATE, SPRING, *filler(130)]
    answer = await client.post(f"{TEMPLATES}/sync", headers=bearer(business.token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["catalogs"] == 1
    assert len(await listed(client, business.token, status="all")) == 132
    again = await client.post(f"{TEMPLATES}/sync", headers=bearer(business.token))
    assert again.json() == {"catalogs": 1, "changed": 0}
    # A business account that cannot be read: 503, nothing changed here.
    graph.access_token = "EAAG-revoked"
    refused = await client.post(f"{TEMPLATES}/sync", headers=bearer(business.token))
    assert refused.status_code == 503
    assert "190" in refused.json()["detail"]
    assert graph.access_token not in refused.text
