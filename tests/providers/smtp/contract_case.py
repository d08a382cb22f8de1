"""The ``smtp`` kind's row of the providers contract (tests/providers/test_contract.py):
each scenario acted by a relay of :mod:`tests.fakes.smtp` on a real socket (STARTTLS
with a trustme CA, AUTH, DSN), its success notices mailed back to the app's own
bounce listener, and a receipt as the listener stores a mailed DSN in the inbox.

Its deployment (:func:`smtp_deployment`): a bounce domain and a listener on loopback
in every app's settings, a DNS server on loopback the apps resolve through, and the
account's sending domain (``example.com``, the contract's sender) created and
verified against it before anything is sent. Its ``attach`` points the relays of a
provocation at the bounce listener of the app that was just started; a relay of the
``quiet`` scenario holds its notices while one app runs and hands them to the next.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import FastAPI

from tests.fakes.black_hole import BlackHole
from tests.fakes.dns import FakeDns
from tests.fakes.reports import dsn
from tests.fakes.smtp import FakeRelay, relay_certificates
from tests.providers.smtp.conftest import BOUNCES, relay_config, verified_domain
from tidings.messages.status import Status

ORDINARY = "bob@example.org"
# What the provider's ids look like: <message id>:<recipient> (tidings.providers.smtp.refs).
SMTP_ID = r"msg_[0-9A-Za-z]{26}:[^@\s]+@[^@\s]+"

# The DSN (action, status) that reports each status; "relayed" is the relay's word
# for "handed on, nothing more known": the message stays sent.
ACTIONS = {
    Status.SENT: ("relayed", "2.0.0"),
    Status.DELIVERED: ("delivered", "2.0.0"),
    Status.UNDELIVERED: ("failed", "5.1.1"),
}
# The relays of the running scenarios, by the port a provider's config names.
_RELAYS: dict[int, FakeRelay] = {}
# The listener port each relay was last pointed at.
_ATTACHED: dict[int, int] = {}


def smtp_report(external_id: str, status: Status, at: datetime) -> dict[str, Any]:
    """A DSN for the recipient the id names, as the listener stores one it took."""
    message_id, _, address = external_id.partition(":")
    address = address or "nobody@example.org"
    action, code = ACTIONS[status]
    mail = dsn(recipient=address, action=action, status=code, envelope_id=message_id)
    return {
        "type": "mail",
        "mail": base64.b64encode(mail).decode(),
        "messageId": message_id,
        "primary": address,
        "rcpt": f"b-{message_id}-aaaaaaaaaaaaa@{BOUNCES}",
        "at": at.isoformat(),
    }


@asynccontextmanager
async def smtp_deployment() -> AsyncIterator[Any]:
    from tests.providers.test_contract import Deployment

    dns_server = FakeDns()
    await dns_server.start()

    async def verify_domain(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
        await verified_domain(client, token, dns_server)

    try:
        yield Deployment(
            settings={
                "email": {"bounce_domain": BOUNCES, "recheck_seconds": 0},
                "inbound_smtp": {"host": "127.0.0.1", "port": 0},
                "dns": {"nameservers": dns_server.nameservers},
                # A first send opens a TLS connection, logs in and signs twice: on a
                # busy machine more than the compressed deadline (0.5 s) of the others.
                "delivery": {"send_timeout_seconds": 5.0},
            },
            prepare=verify_domain,
        )
    finally:
        dns_server.stop()


@asynccontextmanager
async def provoke_smtp(scenario: str) -> AsyncIterator[Any]:
    from tests.providers.test_contract import Provocation

    with tempfile.TemporaryDirectory() as directory:
        ca_file, tls = relay_certificates(Path(directory))
        async with AsyncExitStack() as stack:

            async def relay(
                notices: Literal["none", "send", "hold"] = "send", **fields: Any
            ) -> FakeRelay:
                fake = FakeRelay(ca_file, notices=notices, **fields)
                await fake.start(tls)
                stack.push_async_callback(fake.stop)
                _RELAYS[fake.port] = fake
                stack.callback(_RELAYS.pop, fake.port, None)
                stack.callback(_ATTACHED.pop, fake.port, None)
                return fake

            if scenario == "success":
                yield Provocation(relay_config(await relay()), ORDINARY)
            elif scenario == "quiet":
                yield Provocation(relay_config(await relay("hold")), ORDINARY)
            elif scenario == "retryable":
                # "flaky" is deferred (451) at its first two RCPTs.
                yield Provocation(relay_config(await relay()), "flaky@example.org")
            elif scenario == "permanent":
                # "policy" is refused at RCPT with 554 5.7.1: not a bounce, a refusal.
                yield Provocation(relay_config(await relay()), "policy@example.org")
            else:
                good = relay_config(await relay())
                if scenario == "throttled":
                    slowing = await relay(refuse_all="454 4.7.0 Maximum sending rate exceeded")
                    bad = relay_config(slowing)
                elif scenario == "credentials_refused":
                    bad = {**good, "password": "not-the-password"}
                elif scenario == "black_hole":
                    hole = BlackHole()
                    await hole.start()
                    stack.push_async_callback(hole.stop)
                    # The relay's own timeout well past the send deadline: the
                    # dispatcher's deadline ends the attempt, not aiosmtplib's.
                    bad = {**good, "port": hole.port, "timeoutSeconds": 60}
                else:
                    raise ValueError(scenario)
                yield Provocation(bad, ORDINARY, good)


async def attach_smtp(
    app: FastAPI, client: httpx.AsyncClient, provider_id: str, provocation: Any
) -> None:
    """Point the provocation's relays at this app's bounce listener (the bounce
    domain's MX now leads there); a relay holding notices hands them over when it
    meets an app other than the one it held them for."""
    runtime = app.state.ctx.runtime
    listener = runtime.email.listener
    assert listener is not None
    if not runtime.dispatching:
        # An app that does not deliver (serve --no-dispatch) runs no listener either.
        return
    await listener.ready.wait()
    port = listener.port
    assert port is not None
    for config in (provocation.config, provocation.recovered):
        fake = _RELAYS.get(int((config or {}).get("port", 0)))
        if fake is None:
            continue
        before = _ATTACHED.get(fake.port)
        fake.notice_port = port
        _ATTACHED[fake.port] = port
        if fake.notices == "send" or (before is not None and before != port):
            fake.send_held_notices()
