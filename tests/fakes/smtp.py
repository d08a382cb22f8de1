"""A real SMTP relay on a loopback socket (aiosmtpd), acting a relay's scenarios.

It offers STARTTLS with a certificate of a trustme CA (the provider must be given
that CA as ``tlsCaFile``), requires AUTH after TLS (``relay``/``secret``: anything
else answers 535), advertises DSN and records every message with its MAIL and RCPT
parameters. Recipients act by their local part:

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
=================  ==================================================
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USERNAME, PASSWORD = "relay", "secret"


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
        if local in replies:
            return replies[local]
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
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    dropped: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _servers: dict[int, int] = field(default_factory=dict)
    _protocols: list[SMTP] = field(default_factory=list)
    _server: asyncio.Server | None = None

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
