"""Email tracking end to end (in process): sandbox outbox, pixel, click, stats,
tampered tokens and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login
from tidings.messages.models import OutboxEvent
from tidings.settings import Settings
from tidings.tracking.tokens import TrackingSigner, signer_for

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """These tests run on SQLite and PostgreSQL (grouped and aggregate SQL)."""
    return make_settings(data_dir, database_url)


HTML = (
    "<html><body><p>Hello <b>Ada</b>,</p>"
    '<p><a href="https://example.com/order?id=1&amp;ref=mail">your order</a> and '
    "<a href='http://example.org/help'>help</a>, "
    '<a href="mailto:help@example.com">write</a>, <a href="#top">top</a></p>'
    "</body></html>"
)


async def send(
    client: httpx.AsyncClient, token: str, *, base: str = "/sandbox", **extra: Any
) -> dict[str, Any]:
    body = {
        "to": "ada@example.com",
        "from": "News <news@example.com>",
        "subject": "Your order",
        "html": HTML,
        **extra,
    }
    answer = await client.post(f"{base}/api/v4/email/send", json=body, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return await wait_for(client, token, answer.json()["id"], {"delivered"})


async def kept_email(client: httpx.AsyncClient, token: str, message_id: str) -> dict[str, Any]:
    listed = await client.get("/sandbox/api/v4/sandbox/emails", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    [summary] = [item for item in listed.json()["data"] if item["messageId"] == message_id]
    assert summary["to"] == "ada@example.com"
    assert summary["subject"] == "Your order"
    detail = await client.get(
        f"/sandbox/api/v4/sandbox/emails/{summary['id']}", headers=bearer(token)
    )
    assert detail.status_code == 200, detail.text
    return detail.json()  # type: ignore[no-any-return]


def local(url: str) -> str:
    assert url.startswith(BASE + "/sandbox/t/"), url
    return url[len(BASE) :]


async def events(client: httpx.AsyncClient, token: str, **params: str) -> dict[str, Any]:
    answer = await client.get("/sandbox/api/v4/email/events", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_opens_and_clicks_are_tracked_and_counted(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await send(client, token)
    email = await kept_email(client, token, message["id"])
    html = email["html"]
    clicks = re.findall(r'href="([^"]+/t/c/[^"]+)"', html)
    pixels = re.findall(r'<img src="([^"]+/t/o/[^"]+\.gif)"', html)
    assert len(clicks) == 2 and len(pixels) == 1
    assert 'href="mailto:help@example.com"' in html and 'href="#top"' in html
    assert "example.com/order" not in html  # only reachable through the tracked link
    assert email["text"] and "Hello" in email["text"] and "/t/o/" not in email["text"]
    headers = dict(email["headers"])
    assert "List-Unsubscribe" not in headers  # not marketing mail

    pixel = await client.get(local(pixels[0]))
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    assert "no-store" in pixel.headers["cache-control"]
    assert pixel.content.startswith(b"GIF89a")
    assert (await client.get(local(pixels[0]))).status_code == 200  # a second open

    followed = await client.get(local(clicks[0]), follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://example.com/order?id=1&ref=mail"
    second = await client.get(local(clicks[1]), follow_redirects=False)
    assert second.headers["location"] == "http://example.org/help"

    found = await events(client, token, messageId=message["id"])
    kinds = [event["type"] for event in found["data"]]
    assert kinds.count("opened") == 2 and kinds.count("clicked") == 2
    assert kinds.count("delivered") == 1
    opens = [event for event in found["data"] if event["type"] == "opened"]
    assert [bool((e["detail"] or {}).get("first")) for e in reversed(opens)] == [True, False]
    clicked = [event for event in found["data"] if event["type"] == "clicked"]
    assert {(e["detail"]["link"], e["detail"].get("first", False)) for e in clicked} == {
        (0, True),
        (1, False),
    }
    assert all(event["to"] == "ada@example.com" for event in found["data"])
    stats = found["stats"]
    assert stats["sent"] == 1 and stats["delivered"] == 1
    assert stats["opened"] == 2 and stats["uniqueOpens"] == 1 and stats["openRate"] == 1.0
    assert stats["clicked"] == 2 and stats["uniqueClicks"] == 1 and stats["clickRate"] == 1.0
    assert stats["bounced"] == 0 and stats["unsubscribed"] == 0

    only_opens = await events(client, token, type="opened")
    assert {event["type"] for event in only_opens["data"]} == {"opened"}
    paged = await events(client, token, limit="1")
    assert len(paged["data"]) == 1 and paged["nextCursor"]
    rest = await events(client, token, limit="500", after=paged["nextCursor"])
    assert len(rest["data"]) == len(found["data"]) - 1


async def test_two_messages_make_the_rates(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    opened = await send(client, token)
    await send(client, token, to="bob@example.com")
    bounced = await client.post(
        "/sandbox/api/v4/email/send",
        json={
            "to": "hard-bounce@sandbox.test",
            "from": "n@example.com",
            "subject": "x",
            "text": "x",
        },
        headers=bearer(token),
    )
    await wait_for(client, token, bounced.json()["id"], {"undelivered"})
    email = await kept_email(client, token, opened["id"])
    [pixel] = re.findall(r'<img src="([^"]+\.gif)"', email["html"])
    assert (await client.get(local(pixel))).status_code == 200
    stats = (await events(client, token))["stats"]
    assert stats["sent"] == 3 and stats["delivered"] == 2 and stats["bounced"] == 1
    assert stats["uniqueOpens"] == 1 and stats["openRate"] == 0.5
    assert stats["bounceRate"] == round(1 / 3, 4)
    bounces = await events(client, token, type="bounced")
    assert [event["messageId"] for event in bounces["data"]] == [bounced.json()["id"]]


async def test_tampered_and_unknown_tokens_answer_404(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await send(client, token)
    email = await kept_email(client, token, message["id"])
    [click, _] = re.findall(r'href="[^"]+/t/c/([^"]+)"', email["html"])
    payload, mac = click.split(".")
    signer = signer_for(app.state.ctx.tokens)
    other_link = signer.click_token(message["id"], 7)  # no such link in the message
    forged = TrackingSigner(b"x" * 32).click_token(message["id"], 0)
    flipped = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    open_token = signer.open_token(message["id"])
    unknown = signer.click_token("msg_01ARZ3NDEKTSV4RRFFQ69G5FAV", 0)
    for bad in (flipped, forged, other_link, open_token, unknown, "nonsense", "a.b.c"):
        answer = await client.get(f"/sandbox/t/c/{bad}", follow_redirects=False)
        assert answer.status_code == 404, bad
        assert "location" not in answer.headers
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "not_found"
    assert (await client.get(f"/t/o/{click}.gif")).status_code == 404
    assert (await client.post(f"/t/u/{open_token}")).status_code == 404
    # The token decides the message, not the path's environment.
    assert (await client.get(f"/t/c/{click}", follow_redirects=False)).status_code == 302


async def test_one_click_unsubscribe_on_marketing_mail(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await send(
        client, token, tags=["Marketing"], **{"from": '"<b>News</b>" <news@example.com>'}
    )
    email = await kept_email(client, token, message["id"])
    headers = dict(email["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(
        r"<(http://127\.0\.0\.1:8000/sandbox/t/u/[^>]+)>", headers["List-Unsubscribe"]
    )
    assert match is not None
    url = local(match.group(1))
    assert url in email["html"] and url in email["text"]

    page = await client.get(url)  # a GET (link scanners) never unsubscribes
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<form method="post"' in page.text
    assert "<b>News</b>" not in page.text and "&lt;b&gt;News&lt;/b&gt;" in page.text
    assert (await events(client, token, type="unsubscribed"))["data"] == []

    done = await client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    again = await client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert again.status_code == 200
    found = await events(client, token, type="unsubscribed")
    assert len(found["data"]) == 1 and found["stats"]["unsubscribed"] == 1
    async with app.state.ctx.sessions() as session:
        types = list(
            await session.scalars(
                select(OutboxEvent.type).where(OutboxEvent.subject_id == message["id"])
            )
        )
    assert types.count("email.unsubscribed") == 1
    assert "email.opened" not in types


async def test_tracking_off_and_production_outbox(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await send(client, token, tracking={"opens": False, "clicks": False})
    email = await kept_email(client, token, message["id"])
    assert "/t/" not in email["html"]
    assert 'href="https://example.com/order?id=1&amp;ref=mail"' in email["html"]
    missing = await client.get("/sandbox/api/v4/sandbox/emails/sbx.nothing", headers=bearer(token))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    production = await login(client, user, base="")
    refused = await client.get("/api/v4/sandbox/emails", headers=bearer(production))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (await client.get("/api/v4/email/events", headers=bearer(production))).json()[
        "data"
    ] == []
