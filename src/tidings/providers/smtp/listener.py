"""The bounce and complaint listener: an SMTP server (aiosmtpd) of Tidings on the
bounce domain (``TIDINGS_INBOUND_SMTP__HOST`` / ``__PORT``).

It takes mail for two kinds of address, and refuses every other at ``RCPT`` (so it
never accepts mail it would have to bounce: no backscatter):

* a message's VERP address (``b-<message id>-<signature>@<bounce domain>``,
  :mod:`tidings.domains.verp`) whose signature matches;
* ``fbl@<bounce domain>``, the address an operator registers with the mailbox
  providers' feedback loops; a complaint there is matched to its message by the
  original it quotes (its VERP return path, ``X-Tidings-Message-Id`` or
  ``Message-ID``).

Each message is stored raw (base64) in the inbox under the provider that sent the
message, committed, **before** the listener answers ``250``; the inbox processor
reads it later with :func:`tidings.providers.smtp.reports.parse_report`. A report
about a message whose provider is not recorded yet answers ``451`` (the sender
tries again later); a report naming no message of ours is answered ``250`` and
dropped (logged). The size limit is ``max_message_bytes``; STARTTLS is offered
when a certificate and key are configured.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import socket
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.channels.email.addresses import parse_mailbox
from tidings.core.clock import Clock
from tidings.core.errors import Unprocessable
from tidings.domains.verp import Verp
from tidings.messages.models import Message
from tidings.providers.base import RawReport, ReportSink
from tidings.providers.models import ProviderRefRow, ProviderRow
from tidings.providers.smtp.mailreports import read_mail
from tidings.settings import InboundSmtpSettings

log = logging.getLogger("tidings.providers.smtp.listener")

FBL_LOCAL = "fbl"
_OUR_MESSAGE_ID = re.compile(r"<?(msg_[0-9A-Za-z]{26})@", re.IGNORECASE)


class Refused(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class ReportHandler:
    """aiosmtpd's handler: who may be written to, and storing what arrives."""

    def __init__(
        self,
        *,
        verp: Verp,
        sessions: async_sessionmaker[AsyncSession],
        inbox: ReportSink,
        clock: Clock,
    ) -> None:
        self._verp = verp
        self._sessions = sessions
        self._inbox = inbox
        self._clock = clock
        self.domain = verp.domain
        self._fbl = f"{FBL_LOCAL}@{verp.domain}"
        self.stored = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() == self._fbl or self._verp.message_of(address) is not None:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return "550 5.1.1 No such address here"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            for address in envelope.rcpt_tos:
                await self._accept(address, raw)
        except Refused as refused:
            return refused.reply
        except Exception:
            log.exception("storing a report failed")
            return "451 4.3.0 Could not store the report; try again later"
        return "250 2.0.0 Stored"

    async def _accept(self, address: str, raw: bytes) -> None:
        message_id = self._verp.message_of(address)
        if message_id is None:
            message_id = self._quoted_message(raw)
            if message_id is None:
                log.warning("a report to %s names no message of ours; dropped", address)
                return
        owner = await self._owner(message_id)
        if owner is None:
            log.warning("a report names %s, which does not exist; dropped", message_id)
            return
        provider_id, kind, primary, others = owner
        if provider_id is None:
            raise Refused("451 4.3.0 The message is not recorded yet; try again later")
        if kind != "smtp":
            log.warning("a report names %s, sent by a %s provider; dropped", message_id, kind)
            return
        digest = hashlib.sha256(raw).hexdigest()[:40]
        payload: dict[str, Any] = {
            "type": "mail",
            "mail": base64.b64encode(raw).decode(),
            "messageId": message_id,
            "primary": primary,
            # A notice may name the other recipients (Cc, Bcc) too: their bounces count.
            "others": others,
            "rcpt": address,
            "at": self._clock.now().isoformat(),
        }
        await self._inbox.store(provider_id, [RawReport(f"mail:{message_id}:{digest}", payload)])
        self.stored += 1

    def _quoted_message(self, raw: bytes) -> str | None:
        """The message a complaint quotes: its VERP return path, our header, or its
        Message-ID (the original's, not the report's own)."""
        original = read_mail(raw).original
        path = original.get("return-path")
        if path:
            found = self._verp.message_of(path)
            if found is not None:
                return found
        ours = original.get("x-tidings-message-id")
        if ours and _OUR_MESSAGE_ID.match(ours + "@"):
            return "msg_" + ours.strip()[4:].upper()
        match = _OUR_MESSAGE_ID.search(original.get("message-id", ""))
        return "msg_" + match.group(1)[4:].upper() if match else None

    async def _owner(self, message_id: str) -> tuple[str | None, str | None, str, list[str]] | None:
        """The provider that accepted the message (None while its verdict is not
        recorded), that provider's kind, the message's own recipient and its others.

        The provider is the one its ids (``provider_refs``) were recorded for, not the
        message row's ``provider_id``: that one names the last provider *tried*, and a
        notice may arrive while a message that failed over is still recorded under the
        provider before (stored under that one, it would never match)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Message.to_address, Message.content).where(Message.id == message_id)
                )
            ).first()
            if row is None:
                return None
            ref = (
                await session.execute(
                    select(ProviderRefRow.provider_id, ProviderRow.kind)
                    .outerjoin(ProviderRow, ProviderRow.id == ProviderRefRow.provider_id)
                    .where(ProviderRefRow.message_id == message_id)
                    .limit(1)
                )
            ).first()
        provider_id, kind = (ref[0], ref[1]) if ref is not None else (None, None)
        return provider_id, kind, row[0], other_recipients(row[1], row[0])


def other_recipients(content: Any, primary: str) -> list[str]:
    """An email's envelope recipients besides ``primary`` (its other To, Cc, Bcc),
    lower-cased, each once. The addresses are the message's own (never in a batch's
    shared content)."""
    if not isinstance(content, dict):
        return []
    found: list[str] = []
    for field in ("to", "cc", "bcc"):
        values = content.get(field) or []
        for value in [values] if isinstance(values, str) else values:
            try:
                address = parse_mailbox(str(value), field).address.lower()
            except Unprocessable:
                continue
            if address != primary.lower() and address not in found:
                found.append(address)
    return found


class BounceListener:
    """The server; :meth:`serve` runs until cancelled (under the runtime's supervisor)."""

    def __init__(self, settings: InboundSmtpSettings, handler: ReportHandler) -> None:
        self._settings = settings
        self.handler = handler
        self.port: int | None = None
        self.ready = asyncio.Event()
        self._tls_context = self._tls()

    def _tls(self) -> ssl.SSLContext | None:
        cert, key = self._settings.tls_cert_file, self._settings.tls_key_file
        if cert is None or key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self._settings.max_message_bytes,
            tls_context=self._tls_context,
            hostname=self.handler.domain,
            enable_SMTPUTF8=True,
            timeout=60,
        )

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        # Several processes (uvicorn workers) may each run one on the same port.
        reuse = hasattr(socket, "SO_REUSEPORT")
        server = await loop.create_server(
            self._protocol, self._settings.host, self._settings.port, reuse_port=reuse
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        log.info("bounce listener on %s:%s", self._settings.host, self.port)
        async with server:
            await server.serve_forever()
