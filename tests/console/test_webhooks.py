"""The webhooks pages: the secret shown once, a test event and its attempts, a failed
delivery sent again and replayed, the events as checkboxes of the API's names, the URL
policy's and the events' refusals next to their fields, scoping and CSRF."""

from __future__ import annotations

import asyncio
import re

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in, signed_in_token
from tests.support.users import TestUser, create_test_user
from tests.webhooks.hook_receiver import Receiver
from tidings.webhooks.schemas import EVENT_TYPES

SECRET = re.compile(r'<code id="new-secret">(whsec_[^<]+)</code>')


async def _create(client: httpx.AsyncClient, token: str, url: str, base: str = "/sandbox") -> str:
    made = await client.post(
        f"{base}/console/webhooks",
        data={"csrf": token, "url": url, "events": ["message.*"], "description": "x"},
    )
    assert made.status_code == 200, made.text
    found = re.search(r'<dd class="mono">(whk_[^<]+)</dd>', made.text)
    assert found and SECRET.search(made.text)
    return found.group(1)


async def _wait_for(client: httpx.AsyncClient, path: str, text: str) -> str:
    for _ in range(200):
        page = await client.get(path)
        if text in page.text:
            return page.text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never showed on {path}")


async def test_secret_once_test_event_retry_and_replay(
    client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    endpoint = await _create(client, token, receiver.url)
    page = f"/sandbox/console/webhooks/{endpoint}"
    shown = await client.get(page)
    assert shown.status_code == 200
    assert not SECRET.search(shown.text) and "whsec_" not in shown.text

    # The receiver refuses everything: the test event fails after its retries.
    receiver.answer = lambda _request: (500, {}, b"down")
    tested = await client.post(f"{page}/test", data={"csrf": token})
    assert tested.status_code == 303
    delivery_id = tested.headers["location"].split("tested=")[1]
    text = await _wait_for(client, f"{page}/deliveries", '<span class="status bad">failed</span>')
    # Seven attempts (the first and six retries), each with its answer.
    assert text.count(": HTTP 500, ") == 7 and "7 attempts" in text
    assert 'data-refresh="' not in text  # nothing pending: the log stops refreshing

    receiver.answer = lambda _request: (200, {}, b"ok")
    retried = await client.post(f"{page}/deliveries/{delivery_id}/retry", data={"csrf": token})
    assert retried.status_code == 303
    await _wait_for(client, f"{page}/deliveries", '<span class="status good">delivered</span>')
    assert len(receiver.delivered()) == 1

    # Replay: every failed delivery since a time.
    receiver.answer = lambda _request: (500, {}, b"down")
    await client.post(f"{page}/test", data={"csrf": token})
    await _wait_for(client, f"{page}/deliveries?failed=1", '<span class="status bad">failed</span>')
    receiver.answer = lambda _request: (200, {}, b"ok")
    replayed = await client.post(
        f"{page}/replay", data={"csrf": token, "since": "2020-01-01T00:00"}
    )
    assert replayed.status_code == 303
    assert "replayed=1" in replayed.headers["location"]
    await _wait_for(client, f"{page}/deliveries?failed=1", "No delivery that failed yet.")

    # The stored events are the ticked boxes.
    assert _checked(shown.text) == ["message.*"]

    # Changed: disabled, with another description and two events ticked.
    saved = await client.post(
        page,
        data={
            "csrf": token,
            "url": receiver.url,
            "events": ["message.failed", "email.bounced"],
            "description": "y",
        },
    )
    assert saved.status_code == 303
    changed = await client.get(saved.headers["location"])
    assert "Saved." in changed.text and '<span class="status bad">disabled</span>' in changed.text
    assert "<dd>message.failed, email.bounced</dd>" in changed.text
    assert _checked(changed.text) == ["message.failed", "email.bounced"]

    # None ticked is refused next to the events, and nothing changes.
    cleared = await client.post(page, data={"csrf": token, "url": receiver.url, "enabled": "on"})
    assert cleared.status_code == 422
    assert 'id="f-events-note"><span class="field-error">Tick at least one event' in cleared.text
    assert _checked(cleared.text) == []
    assert "<dd>message.failed, email.bounced</dd>" in cleared.text

    rotated = await client.post(f"{page}/rotate-secret", data={"csrf": token})
    assert SECRET.search(rotated.text)
    assert "Deliveries are signed with the old secret too" in rotated.text


CHECKBOX = re.compile(
    r'<input id="f-ev-[^"]+" name="events" type="checkbox" value="([^"]+)"( checked)?>'
)


def _offered(text: str) -> list[str]:
    return [value for value, _ in CHECKBOX.findall(text)]


def _checked(text: str) -> list[str]:
    return [value for value, checked in CHECKBOX.findall(text) if checked]


async def test_the_events_are_the_apis_names_as_checkboxes(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    page = (await client.get("/console/webhooks")).text
    offered = _offered(page)
    # Every name the API accepts, each kind's prefix, and every event: each once.
    assert set(offered) == {"*", *EVENT_TYPES, *{f"{n.split('.')[0]}.*" for n in EVENT_TYPES}}
    assert len(offered) == len(set(offered))
    assert _checked(page) == ["*"]  # a new endpoint hears every event unless told otherwise


async def test_refused_url_and_events_are_shown_by_their_fields(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    token = await signed_in_token(client)
    refused = await client.post(
        "/console/webhooks",
        data={"csrf": token, "url": "http://127.0.0.1:9/hook", "events": ["message.*", "email.*"]},
    )
    assert refused.status_code == 422
    assert 'id="f-url-note"><span class="field-error">' in refused.text
    assert 'value="http://127.0.0.1:9/hook"' in refused.text
    assert _checked(refused.text) == ["message.*", "email.*"]  # the ticks are kept
    # A name no checkbox offers (a form made by hand) is refused by the API's check.
    unknown = await client.post(
        "/console/webhooks",
        data={"csrf": token, "url": "https://example.com/hook", "events": ["message.*", "nope"]},
    )
    assert unknown.status_code == 422
    assert 'id="f-events-note"><span class="field-error">&#39;nope&#39; is not' in unknown.text


async def test_scoped_and_csrf(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    other = await create_test_user(app, "grace@example.com")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50001)),
        base_url="http://127.0.0.1:8000",
    ) as theirs_client:
        await sign_in(theirs_client, other, base="/sandbox")
        their_token = await signed_in_token(theirs_client, "/sandbox")
        theirs = await _create(theirs_client, their_token, receiver.url)

    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    mine = await _create(client, token, receiver.url)
    assert (await client.get(f"/sandbox/console/webhooks/{theirs}")).status_code == 404
    assert (await client.get(f"/sandbox/console/webhooks/{theirs}/deliveries")).status_code == 404
    assert (await client.get(f"/console/webhooks/{mine}")).status_code == 404
    for action in ("", "/test", "/rotate-secret", "/delete", "/deliveries/dlv_x/retry"):
        answer = await client.post(
            f"/sandbox/console/webhooks/{theirs}{action}", data={"csrf": token}
        )
        assert answer.status_code == 404, action
    listed = await client.get("/sandbox/console/webhooks")
    assert mine in listed.text and theirs not in listed.text

    assert (
        await client.post(f"/sandbox/console/webhooks/{mine}/delete", data={})
    ).status_code == 403
    assert (
        await client.post(f"/sandbox/console/webhooks/{mine}/delete", data={"csrf": token})
    ).status_code == 303
    assert (await client.get(f"/sandbox/console/webhooks/{mine}")).status_code == 404
