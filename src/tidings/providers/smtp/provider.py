"""The ``smtp`` provider: one message, one SMTP transaction on a pooled connection.

Per message: the MIME is built from the stored request
(:func:`~tidings.channels.email.stored.render_outbound_email`), then signed and given
its envelope sender by the deployment's outbound mail service (``deps.extras
["email_outbound"]``, :class:`tidings.domains.outbound.OutboundMail`: DKIM with the
sender domain's keys, the VERP return path), then ``MAIL FROM``, one ``RCPT TO`` per
recipient (To, Cc and Bcc) and ``DATA``: written at once and their replies read
together where the relay offers ``PIPELINING`` (RFC 2920, :mod:`.session`), else one
command at a time; every reply is read and classified the same way in both. With
``requestDsn`` and a relay that offers DSN, ``MAIL FROM`` carries ``RET=HDRS
ENVID=<message id>`` and each ``RCPT TO`` ``NOTIFY=SUCCESS,FAILURE
ORCPT=rfc822;<address>``, so the relay's notices come back to the listener
(:mod:`.listener`) and move the message.

The message's status follows its first ``to`` address (the message row's ``to``):
that recipient's reply decides the outcome. Replies are read with :mod:`.errors`:

* 2xx: taken; :class:`Accepted` carries one :class:`ProviderRef` per recipient,
  ``<message id>:<address>`` (:func:`ref_id`), so a DSN naming its
  ``Final-Recipient`` finds its message.
* 4xx for the first recipient: nothing is handed over (``RSET``), the message is
  retried with backoff.
* 5.1.x at ``RCPT`` for the first recipient: a hard bounce. Chosen design: the
  message is **accepted** and a bounce report is stored in the inbox at once (the
  same kind of report a DSN produces), rather than raising a
  ``PermanentDeliveryError``. Why: a permanent error ends the message ``failed``
  and nothing else, while a hard bounce must end ``undelivered``, suppress the
  address and fire ``email.bounced`` (listmonk#2623: synchronous 550 5.1.1 were not
  recorded as bounces). The inbox path does all three through the one status
  machine, exactly as an asynchronous DSN does, is durable before ``send`` returns,
  and needs no special case in the verdict writer.
* other 5xx for the first recipient: :class:`PermanentDeliveryError` with the
  relay's reply text (``failed``).
* a Cc or Bcc (or a second To) refused does not change the outcome: retrying the
  message would deliver it twice to those who took it. A 5.1.x for one of them is
  that recipient's hard bounce, stored in the inbox like the first's (a
  ``bounced`` event naming it, the address suppressed, the message's status left
  to its first ``to``); any other refusal of theirs is logged.

A connection found dead when reused (the relay closed it while idle) is replaced
once, before anything was handed over; a connection lost later is a retry of the
whole message (the relay had not confirmed it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tidings.providers.base import (
    Accepted,
    OutboundMessage,
    ProviderDeps,
    ProviderRef,
    RawReport,
)
from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    DeliveryError,
    RetryableDeliveryError,
)
from tidings.providers.registry import ProviderIdentity
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.errors import Reply, error_for
from tidings.providers.smtp.refs import ref_id, xtext
from tidings.providers.smtp.session import (
    SessionLost,
    UnexpectedReply,
    command_line,
    message_payload,
)
from tidings.providers.smtp.transport import (
    Connection,
    SmtpPool,
    StaleConnection,
    connection_error,
)

log = logging.getLogger("tidings.providers.smtp")

OUTBOUND_KEY = "email_outbound"

# What a connection failing under a command raises (a timeout is TimeoutError).
LOST = (SessionLost, TimeoutError, OSError)


def _mail_options(message: OutboundMessage, dsn: bool) -> list[str]:
    return ["RET=HDRS", f"ENVID={xtext(message.id)}"] if dsn else []


def _rcpt_options(address: str, dsn: bool) -> list[str]:
    return ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{xtext(address)}"] if dsn else []


@dataclass(frozen=True, slots=True)
class PreparedMail:
    """What goes on the wire: the signed message, its envelope sender, and its
    envelope recipients (To, Cc, Bcc; each once)."""

    data: bytes
    mail_from: str
    recipients: tuple[str, ...]


class OutboundMail(Protocol):
    """Signs a message and chooses its envelope sender (the deployment's domains)."""

    async def prepare(self, message: OutboundMessage, *, date: datetime) -> PreparedMail: ...


class SmtpProvider:
    kind = "smtp"

    def __init__(self, identity: ProviderIdentity, config: SmtpConfig, deps: ProviderDeps) -> None:
        self.id = identity.id
        self.channel = identity.channel
        self._config = config
        self._deps = deps
        self._outbound: OutboundMail | None = deps.extras.get(OUTBOUND_KEY)
        self.pool = SmtpPool(config, size=config.max_connections)

    async def send(self, message: OutboundMessage) -> Accepted:
        if self._outbound is None:
            raise ConfigurationError(
                "signing_unavailable", "This process has no outbound mail service to sign with."
            )
        prepared = await self._outbound.prepare(message, date=self._deps.clock.now())
        recipients = list(prepared.recipients)
        try:
            return await self._transmit(message, prepared, recipients, fresh=False)
        except StaleConnection:
            return await self._transmit(message, prepared, recipients, fresh=True)

    async def check(self) -> str:
        async with self.pool.connection(fresh=True) as conn:
            try:
                reply = await conn.session.command(b"NOOP\r\n")
            except LOST as error:
                raise self._lost(conn, error) from None
            if not reply.ok:
                raise self._lost(conn, UnexpectedReply(reply))
        login = f" as {self._config.username}" if self._config.username else ""
        return (
            f"Connected to {self._config.host}:{self._config.port} "
            f"({self._config.security}){login}; nothing was sent."
        )

    async def close(self) -> None:
        await self.pool.close()

    async def _transmit(
        self,
        message: OutboundMessage,
        prepared: PreparedMail,
        recipients: list[str],
        *,
        fresh: bool,
    ) -> Accepted:
        primary = message.to.lower()
        async with self.pool.connection(fresh=fresh) as conn:
            session = conn.session
            dsn = self._config.request_dsn and conn.dsn
            mail = command_line("MAIL FROM", prepared.mail_from, _mail_options(message, dsn))
            rcpts = [command_line("RCPT TO", a, _rcpt_options(a, dsn)) for a in recipients]
            # Pipelined: MAIL, every RCPT and DATA in one write, their replies read
            # together (RFC 2920); else one command at a time. Either way every reply
            # is read and classified below, the same way.
            pipelined = session.pipelining
            if pipelined:
                mail_reply = await self._first_reply(conn, mail, *rcpts, b"DATA\r\n")
            else:
                mail_reply = await self._first_reply(conn, mail)
            if not mail_reply.ok:
                if mail_reply.code == 421:
                    raise self._refusal(conn, mail_reply, "mail")
                if pipelined:
                    # Their replies (503: no MAIL) are read, the session kept in step.
                    data_reply = (await self._replies(conn, len(rcpts) + 1))[-1]
                    await self._leave_data(conn, data_reply, taken=False)
                await self._rset(conn)
                raise self._refusal(conn, mail_reply, "mail")
            if pipelined:
                *rcpt_replies, data_reply = await self._replies(conn, len(rcpts) + 1)
            else:
                rcpt_replies = [await self._command(conn, line) for line in rcpts]
            refused: dict[str, Reply] = {}
            taken: list[str] = []
            for address, reply in zip(recipients, rcpt_replies, strict=True):
                if reply.ok:
                    taken.append(address)
                elif reply.code == 421:
                    raise self._refusal(conn, reply, "rcpt")
                else:
                    refused[address.lower()] = reply
            first = refused.get(primary)
            if first is not None and not first.hard_bounce:
                if pipelined:
                    await self._leave_data(conn, data_reply, taken=bool(taken))
                await self._rset(conn)
                raise error_for(first, stage="rcpt")
            bounced: list[RawReport] = []
            for address, reply in refused.items():
                if address == primary:
                    continue
                if reply.hard_bounce:
                    bounced.append(self._bounce(message, reply, address))
                else:
                    log.warning("%s: a recipient was refused: %s", message.id, reply.shown)
            if taken:
                if not pipelined:
                    data_reply = await self._command(conn, b"DATA\r\n")
                await self._data(conn, data_reply, prepared.data)
            else:
                if pipelined:
                    await self._leave_data(conn, data_reply, taken=False)
                await self._rset(conn)
            conn.messages += 1
        if first is not None:
            bounced.insert(0, self._bounce(message, first))
        if bounced:
            await self._deps.inbox.store(self.id, bounced)
        return Accepted(
            tuple(
                ProviderRef(ref_id(message.id, address), recipient=address)
                for address in recipients
            )
        )

    async def _first_reply(self, conn: Connection, *lines: bytes) -> Reply:
        """Send the transaction's first commands; the reply to ``MAIL``. A reused
        connection found closed (or out of step) before that reply is stale: nothing
        was handed over, the caller takes a new one."""
        try:
            if not conn.session.in_step():
                raise SessionLost("a reply nobody asked for")
            conn.session.send(*lines)
            return await conn.session.reply()
        except SessionLost:
            if conn.reused:
                conn.broken = True
                raise StaleConnection from None
            raise self._lost(conn, SessionLost("closed")) from None
        except LOST as error:
            raise self._lost(conn, error) from None

    async def _replies(self, conn: Connection, count: int) -> list[Reply]:
        try:
            return await conn.session.replies(count)
        except LOST as error:
            raise self._lost(conn, error) from None

    async def _command(self, conn: Connection, line: bytes) -> Reply:
        try:
            return await conn.session.command(line)
        except LOST as error:
            raise self._lost(conn, error) from None

    async def _data(self, conn: Connection, data_reply: Reply, data: bytes) -> None:
        if data_reply.code != 354:
            raise self._refusal(conn, data_reply, "data")
        try:
            conn.session.send(message_payload(data))
            reply = await conn.session.reply()
        except LOST as error:
            raise self._lost(conn, error) from None
        if not reply.ok:
            raise self._refusal(conn, reply, "data")

    async def _leave_data(self, conn: Connection, data_reply: Reply, *, taken: bool) -> None:
        """A pipelined ``DATA`` the message will not follow. Refused, nothing to do.
        Accepted (354) with no recipient taken: a lone ``.`` ends it, nobody to
        deliver to (RFC 2920 section 3.1). Accepted with recipients taken (the first
        ``to`` deferred, a Cc taken): the connection is dropped before the end of
        the message, so the relay discards it and the Cc does not get it now and
        again at the retry."""
        if data_reply.code != 354:
            return
        if taken:
            conn.broken = True
            return
        await self._command(conn, b".\r\n")

    async def _rset(self, conn: Connection) -> None:
        if conn.broken:
            return
        try:
            await conn.session.command(b"RSET\r\n")
        except LOST:
            conn.broken = True

    def _refusal(self, conn: Connection, reply: Reply, stage: str) -> DeliveryError:
        error = error_for(reply, stage=stage)
        if isinstance(error, ConnectionDown):
            conn.broken = True
        return error

    def _lost(self, conn: Connection, error: BaseException) -> DeliveryError:
        """The connection failed mid-transaction: it is dropped, the message retried."""
        conn.broken = True
        lost = connection_error(self._config, error)
        if isinstance(lost, RetryableDeliveryError):
            return lost
        return RetryableDeliveryError(lost.code, lost.message)

    def _bounce(
        self, message: OutboundMessage, reply: Reply, other: str | None = None
    ) -> RawReport:
        """A hard bounce at RCPT, as an inbox report: the message's own recipient's,
        or ``other``'s (a Cc, a Bcc)."""
        external_id = ref_id(message.id, other or message.to)
        payload: dict[str, Any] = {
            "type": "refusal",
            "id": external_id,
            "reply": reply.shown,
            "status": reply.enhanced,
            "at": self._deps.clock.now().isoformat(),
        }
        if other is not None:
            payload["recipient"] = other
        return RawReport(dedupe_key=f"{external_id}:refused"[:191], payload=payload)
