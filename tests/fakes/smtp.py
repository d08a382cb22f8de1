"""A real SMTP relay on a loopback socket (aiosmtpd), acting a relay's scenarios.

It offers STARTTLS with a certificate of a trustme CA (the provider must be given
that CA as ``tlsCaFile``), requires AUTH after TLS (``relay``/``secret``: anything
else answers 535), advertises DSN and PIPELINING (``pipelining=False``: not; aiosmtpd
reads pipelined commands in order either way) and records every message with its
MAIL and RCPT parameters. Recipients act by their local part:

=================  ==================================================
local part         reply
=================  ==================================================
``defer``          ``451 4.2.0`` at RCPT (retry later)
``throttle``       ``454 4.7.0`` at RCPT (slow down)
``unknown``        ``550 5.1.1`` at RCPT (no such mailbox: hard bounce)
``policy``         ``554 5.7.1`` at RCPT (refused by policy)
``bigdata``        ``552 5.3.4`` after DATA
``slow``           DATA waits until :meth:`FakeRelay.release` is called
``drop-once``      the connection is dropped at DATA, once
``flaky``          ``451 4.3.0`` at its first two RCPTs, then taken
=================  ==================================================

``refuse_all`` makes every RCPT answer that reply instead (a relay throttling the
whole account). ``notices`` makes it act as the relay's DSN machinery: for each
message taken, a ``delivered`` notice (RFC 3464) is mailed to the message's return
path, at the listener on :attr:`FakeRelay.notice_port` (which stands in for the
bounce domain's MX), retried while the listener answers 4xx, as an MTA does;
``"hold"`` keeps them until :meth:`FakeRelay.send_held_notices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes.reports import deliver, dsn

USERNAME, PASSWORD = "relay", "secret"
FLAKY_REFUSALS = 2

log = logging.getLogger("tests.fakes.smtp")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    data: bytes
    connection: int


class _DsnSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd refuses unknown MAIL/RCPT parameters; a DSN relay takes these."""

    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None:
            for name in ("RET", "ENVID", "NOTIFY", "ORCPT"):
                result.pop(name, None)
        return result


@dataclass
class _Handler:
    relay: FakeRelay

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.relay.dsn:
            responses.insert(-1, "250-DSN")
        if self.relay.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@")[0].lower()
        replies = {
            "defer": "451 4.2.0 Mailbox temporarily unavailable",
            "throttle": "454 4.7.0 Throttling failure: Maximum sending rate exceeded",
            "unknown": "550 5.1.1 The email account that you tried to reach does not exist",
            "policy": "554 5.7.1 Message refused by policy",
        }
        if self.relay.refuse_all is not None:
            return self.relay.refuse_all
        if local in replies:
            return replies[local]
        if local == "flaky":
            self.relay.flaky_seen += 1
            if self.relay.flaky_seen <= FLAKY_REFUSALS:
                return "451 4.3.0 Temporary local problem, try again"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        locals_ = {address.split("@")[0].lower() for address in envelope.rcpt_tos}
        if "slow" in locals_:
            await self.relay.released.wait()
        if "drop-once" in locals_ and not self.relay.dropped:
            self.relay.dropped = True
            assert server.transport is not None
            server.transport.abort()
            return "421 dropped"
        if "bigdata" in locals_:
            return "552 5.3.4 Message too big"
        self.relay.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                mail_options=list(envelope.mail_options),
                rcpt_options=list(envelope.rcpt_options),
                data=bytes(envelope.original_content or b""),
                connection=self.relay.connection_of(server),
            )
        )
        self.relay.arrived.set()
        self.relay.owe_notices(self.relay.received[-1])
        return "250 2.0.0 Ok: queued"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USERNAME.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class FakeRelay:
    ca_file: Path
    dsn: bool = True
    pipelining: bool = True
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    dropped: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _servers: dict[int, int] = field(default_factory=dict)
    _protocols: list[SMTP] = field(default_factory=list)
    _server: asyncio.Server | None = None
    refuse_all: str | None = None
    flaky_seen: int = 0
    notices: Literal["none", "send", "hold"] = "none"
    notice_port: int | None = None
    held: list[Received] = field(default_factory=list)
    _notifying: set[asyncio.Task[None]] = field(default_factory=set)

    def connection_of(self, server: SMTP) -> int:
        return self._servers[id(server)]

    def release(self) -> None:
        self.released.set()

    async def start(self, tls: ssl.SSLContext) -> None:
        def factory() -> SMTP:
            protocol = _DsnSMTP(
                _Handler(self),
                tls_context=tls,
                require_starttls=True,
                authenticator=_authenticate,
                auth_require_tls=True,
                hostname="localhost",
            )
            self.connections += 1
            self._servers[id(protocol)] = self.connections
            self._protocols.append(protocol)
            return protocol

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def owe_notices(self, received: Received) -> None:
        if self.notices == "hold" or (self.notices == "send" and self.notice_port is None):
            self.held.append(received)
        elif self.notices == "send":
            self._notify(received)

    def send_held_notices(self) -> None:
        """Mail what was held to the listener on :attr:`notice_port`."""
        held, self.held = self.held, []
        for received in held:
            self._notify(received)

    def _notify(self, received: Received) -> None:
        task = asyncio.create_task(self._mail_notices(received, self.notice_port))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _mail_notices(self, received: Received, port: int | None) -> None:
        assert port is not None
        envelope_id = next(
            (o.partition("=")[2] for o in received.mail_options if o.upper().startswith("ENVID=")),
            "",
        )
        for recipient in received.rcpt_tos:
            notice = dsn(
                recipient=recipient, action="delivered", status="2.0.0", envelope_id=envelope_id
            )
            # The listener answers 451 until the message's provider is recorded.
            for _ in range(100):
                try:
                    await deliver(port, received.mail_from, notice)
                    break
                except (aiosmtplib.SMTPException, OSError) as error:
                    log.debug("notice deferred: %s", error)
                    await asyncio.sleep(0.05)

    def drop_connections(self) -> None:
        """Close every open connection from the relay's side (a restart, an idle timeout)."""
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()

    @property
    def open_connections(self) -> int:
        return sum(
            1
            for protocol in self._protocols
            if protocol.transport is not None and not protocol.transport.is_closing()
        )

    async def wait_for(self, count: int) -> list[Received]:
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    async def stop(self) -> None:
        self.released.set()
        for task in list(self._notifying):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def relay_certificates(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A trustme CA (written to ``ca.pem``) and the server context of a
    ``localhost`` certificate it issued."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return ca_file, context
