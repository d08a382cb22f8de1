"""Sending through the API to a real relay on a socket: STARTTLS verified against the
test CA, AUTH, DSN parameters, a VERP return path, both DKIM signatures verifying
with dkimpy against the records the domains API answered, one connection reused."""

from __future__ import annotations

from typing import Any

import dkim
import httpx
from fastapi import FastAPI

from tests.fakes.dns import FakeDns
from tests.fakes.smtp import FakeRelay
from tests.providers.smtp.conftest import BOUNCES
from tests.support.messages import wait_for
from tests.support.users import bearer


async def send_email(
    client: httpx.AsyncClient, token: str, to: str = "bob@example.org", **extra: Any
) -> dict[str, Any]:
    payload = {"to": to, "from": "News <news@example.com>", "subject": "Hi", "text": "hello"}
    payload.update(extra)
    answer = await client.post(
        "/api/v4/email/send", json=payload, headers={**bearer(token), "Prefer": "respond-async"}
    )
    assert answer.status_code in (200, 202), answer.text
    return dict(answer.json())


def _signatures(data: bytes) -> list[dict[bytes, bytes]]:
    found = []
    headers = data.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n")
    for header in unfolded:
        if header.lower().startswith("dkim-signature:"):
            tags = {}
            for part in header.split(":", 1)[1].split(";"):
                name, _, value = part.strip().partition("=")
                tags[name.encode()] = "".join(value.split()).encode()
            found.append(tags)
    return found


async def test_a_marketing_email_leaves_signed_twice_with_dsn_and_verp(
    app: FastAPI,
    client: httpx.AsyncClient,
    ready: dict[str, Any],
    relay: FakeRelay,
    dns_server: FakeDns,
) -> None:
    sent = await send_email(client, ready["token"], tags=["marketing"], cc="carol@example.org")
    done = await wait_for(client, ready["token"], sent["id"], {"sent"}, base="")
    assert done["providerId"] == ready["provider"]
    [received] = await relay.wait_for(1)

    assert received.mail_from.startswith(f"b-{sent['id']}-")
    assert received.mail_from.endswith(f"@{BOUNCES}")
    assert "RET=HDRS" in received.mail_options
    assert f"ENVID={sent['id']}".upper() in received.mail_options
    assert received.rcpt_tos == ["bob@example.org", "carol@example.org"]
    assert "NOTIFY=SUCCESS,FAILURE" in received.rcpt_options
    assert "ORCPT=RFC822;BOB@EXAMPLE.ORG" in received.rcpt_options

    signatures = _signatures(received.data)
    assert sorted(sig[b"a"] for sig in signatures) == [b"ed25519-sha256", b"rsa-sha256"]
    for sig in signatures:
        assert sig[b"c"] == b"relaxed/relaxed"
        assert sig[b"d"] == b"example.com"
        signed = sig[b"h"].lower().split(b":")
        assert signed.count(b"from") == 2
        assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed
        assert b"feedback-id" in signed
    assert b"\r\nFeedback-ID: bulk:" in received.data
    assert b"Message-ID: <" + sent["id"].encode() + b"@example.com>" in received.data

    # Both signatures verify against what the domains API told the user to publish.
    verifier = dkim.DKIM(received.data)
    assert verifier.verify(idx=0, dnsfunc=dns_server.txt_lookup)
    assert verifier.verify(idx=1, dnsfunc=dns_server.txt_lookup)


async def test_one_connection_carries_many_messages(
    client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    ids = [
        (await send_email(client, ready["token"], to=f"user{n}@example.org"))["id"]
        for n in range(8)
    ]
    for message_id in ids:
        await wait_for(client, ready["token"], message_id, {"sent"}, base="")
    received = await relay.wait_for(8)
    # maxConnections is 1: every message went over the first connection.
    assert relay.connections == 1
    assert {item.connection for item in received} == {1}
