"""The messages list and a message's page: filters, search, the timeline in words,
webhook deliveries, the sandbox's emails in a sandboxed frame, and scoping."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in
from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, create_test_user, login
from tests.webhooks.hook_receiver import Receiver
from tidings.console.headers import CONTENT_SECURITY_POLICY, EMAIL_PREVIEW_POLICY

ADA = "+393331234567"
XSS = "<img src=x onerror=alert(1)>"


async def send_sms(
    client: httpx.AsyncClient, token: str, to: str = ADA, body: str = "Hello", **extra: object
) -> str:
    answer = await client.post(
        "/sandbox/api/v4/sms/send", json={"to": to, "body": body, **extra}, headers=bearer(token)
    )
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["id"])


async def test_the_list_filters_and_searches(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    first = await send_sms(client, token, body="first")
    second = await send_sms(client, token, to="+393339876543", body="second")
    await wait_for(client, token, second, {"delivered"})
    await sign_in(client, user)

    everything = await client.get("/sandbox/console/messages")
    assert everything.status_code == 200
    assert everything.text.index(second) < everything.text.index(first)  # newest first

    by_recipient = await client.get("/sandbox/console/messages", params={"q": "+393339876543"})
    assert second in by_recipient.text and first not in by_recipient.text

    by_id = await client.get("/sandbox/console/messages", params={"q": first})
    assert by_id.status_code == 303
    assert by_id.headers["location"] == f"/sandbox/console/messages/{first}"

    by_channel = await client.get("/sandbox/console/messages", params={"channel": "email"})
    assert first not in by_channel.text and "No message matches these filters." in by_channel.text

    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    by_time = await client.get("/sandbox/console/messages", params={"since": later})
    assert first not in by_time.text

    odd = await client.get(
        "/sandbox/console/messages", params={"status": "lost", "since": "yesterday"}
    )
    assert odd.status_code == 200
    assert "Left out, not understood: status “lost”, since “yesterday”." in odd.text
    assert first in odd.text

    # Production has its own messages: none.
    production = await client.get("/console/messages")
    assert first not in production.text
    assert "No message yet in the production." in production.text


async def test_pages_go_on_by_cursor(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    ids = [await send_sms(client, token, body=f"n{n}") for n in range(51)]
    await sign_in(client, user)
    first_page = await client.get("/sandbox/console/messages")
    older = re.search(
        r'href="(/sandbox/console/messages\?after=[^"]+)">Older messages', first_page.text
    )
    assert older, "no link to older messages"
    second_page = await client.get(older.group(1).replace("&amp;", "&"))
    assert ids[0] in second_page.text
    assert ids[-1] not in second_page.text
    assert "First page" in second_page.text


async def test_a_message_page_tells_its_whole_story(
    client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    token = await login(client, user)
    hook = await client.post(
        "/sandbox/api/v4/webhooks/create", json={"url": receiver.url}, headers=bearer(token)
    )
    assert hook.status_code in (200, 201), hook.text
    message_id = await send_sms(client, token, body=XSS)
    final = await wait_for(client, token, message_id, {"delivered"})
    await sign_in(client, user)

    page = await client.get(f"/sandbox/console/messages/{message_id}")
    assert page.status_code == 200
    text = page.text
    # The text is shown as text.
    assert XSS not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "Accepted by the provider" in text
    assert 'data-status="delivered"' in text
    assert final["providerMessageId"] in text
    assert "<dt>Provider</dt><dd>Sandbox sms (sandbox, prv_sandbox_sms)</dd>" in text
    # The switch leads to the other environment's list, not to this message there.
    assert 'href="/console/messages"' in text

    # The webhook deliveries it caused, with their attempts.
    async def deliveries_shown() -> str:
        fragment = await client.get(f"/sandbox/console/messages/{message_id}/timeline")
        assert fragment.status_code == 200
        return fragment.text

    shown = await deliveries_shown()
    deadline = time.monotonic() + 20
    while "data-refresh" in shown and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        shown = await deliveries_shown()
    # Settled, its deliveries done: the timeline is not refreshed any more.
    assert "data-refresh" not in shown, shown
    assert "message.sent" in shown and "message.delivered" in shown
    assert receiver.url in shown
    assert "HTTP 200" in shown
    assert ">pending</span>" not in shown


async def test_a_message_still_on_its_way_is_watched(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    message_id = await send_sms(client, token, scheduledAt=later)
    await sign_in(client, user)
    fragment = await client.get(f"/sandbox/console/messages/{message_id}/timeline")
    assert fragment.status_code == 200
    assert fragment.text.startswith("<section")
    assert f'data-refresh="/sandbox/console/messages/{message_id}/timeline"' in fragment.text
    assert 'data-status="scheduled"' in fragment.text
    assert "<html" not in fragment.text


async def test_errors_are_said_in_words(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    message_id = await send_sms(client, token, to="+15550000001")
    final = await wait_for(client, token, message_id, {"failed"})
    await sign_in(client, user)
    page = await client.get(f"/sandbox/console/messages/{message_id}")
    assert final["error"]["code"] in page.text
    assert final["error"]["message"].replace("'", "&#39;") in page.text
    assert "Failed: never accepted by a provider" in page.text


async def test_another_accounts_message_is_not_found(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message_id = await send_sms(client, token, body="for Ada only")
    other = await create_test_user(app, "grace@example.com")
    await sign_in(client, other)
    for path in (
        f"/sandbox/console/messages/{message_id}",
        f"/sandbox/console/messages/{message_id}/timeline",
        f"/sandbox/console/messages/{message_id}/emails/sbx.x",
    ):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert "for Ada only" not in answer.text
        assert ADA not in answer.text
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    listed = await client.get("/sandbox/console/messages", params={"q": message_id})
    assert listed.status_code == 200
    assert "There is no message" in listed.text

    # The owner, in the other environment, does not find it either.
    client.cookies.clear()
    await sign_in(client, user)
    assert (await client.get(f"/console/messages/{message_id}")).status_code == 404
    assert (await client.get(f"/sandbox/console/messages/{message_id}")).status_code == 200


async def test_the_sandbox_email_is_shown_in_a_sandboxed_frame(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    sent = await client.post(
        "/sandbox/api/v4/email/send",
        json={
            "to": "ada@example.com",
            "from": "News <news@example.com>",
            "subject": "Your order",
            "html": "<p>Hello <b>Ada</b></p><script>alert(1)</script>",
            "text": "Hello Ada",
        },
        headers=bearer(token),
    )
    assert sent.status_code == 200, sent.text
    message_id = sent.json()["id"]
    await wait_for(client, token, message_id, {"delivered"})
    await sign_in(client, user)

    page = await client.get(f"/sandbox/console/messages/{message_id}")
    assert page.status_code == 200
    frame = re.search(r'<iframe class="email" sandbox="" [^>]*src="([^"]+)"', page.text)
    assert frame, page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "Your order" in page.text

    email = await client.get(frame.group(1))
    assert email.status_code == 200
    assert email.headers["content-security-policy"] == EMAIL_PREVIEW_POLICY
    assert email.headers["content-security-policy"].startswith("sandbox")
    assert email.headers["x-frame-options"] == "SAMEORIGIN"
    assert "<b>Ada</b>" in email.text

    # Not in production, and not under another message.
    email_id = frame.group(1).rsplit("/", 1)[1]
    other = await send_sms(client, token)
    assert (
        await client.get(f"/sandbox/console/messages/{other}/emails/{email_id}")
    ).status_code == 404
