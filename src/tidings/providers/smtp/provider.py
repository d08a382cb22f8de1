"""The ``smtp`` provider: one message, one SMTP transaction on a pooled connection.

Per message: the MIME is built from the stored request
(:func:`~tidings.channels.email.stored.render_outbound_email`), then signed and given
its envelope sender by the deployment's outbound mail service (``deps.extras
["email_outbound"]``, :class:`tidings.domains.outbound.OutboundMail`: DKIM with the
sender domain's keys, the VERP return path), then ``MAIL FROM``, one ``RCPT TO`` per
recipient (To, Cc and Bcc) and ``DATA``. With ``requestDsn`` and a relay that
offers DSN, ``MAIL FROM`` carries ``RET=HDRS ENVID=<message id>`` and each ``RCPT
TO`` ``NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;<address>``, so the relay's notices come
back to the listener (:mod:`.listener`) and move the message.

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

import aiosmtplib

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
from tidings.providers.smtp.transport import (
    Connection,
    SmtpPool,
    StaleConnection,
    connection_error,
)

log = logging.getLogger("tidings.providers.smtp")

OUTBOUND_KEY = "email_outbound"


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
                await conn.smtp.noop()
            except aiosmtplib.SMTPException as error:
                raise self._lost(conn, error) from None
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
            dsn = self._config.request_dsn and conn.dsn
            await self._mail_from(conn, message, prepared, dsn)
            refused: dict[str, Reply] = {}
            taken: list[str] = []
            for address in recipients:
                reply = await self._rcpt(conn, address, dsn)
                if reply is None:
                    taken.append(address)
                else:
                    refused[address.lower()] = reply
            first = refused.get(primary)
            if first is not None and not first.hard_bounce:
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
                await self._data(conn, prepared.data)
            else:
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

    async def _mail_from(
        self, conn: Connection, message: OutboundMessage, prepared: PreparedMail, dsn: bool
    ) -> None:
        options = ["RET=HDRS", f"ENVID={xtext(message.id)}"] if dsn else []
        try:
            await conn.smtp.mail(prepared.mail_from, options=options)
        except aiosmtplib.SMTPServerDisconnected:
            if conn.reused:
                # Closed by the relay while idle: nothing was handed over yet.
                conn.broken = True
                raise StaleConnection from None
            raise self._lost(conn, aiosmtplib.SMTPServerDisconnected("closed")) from None
        except aiosmtplib.SMTPResponseException as refused:
            await self._rset(conn)
            raise self._refusal(conn, Reply(refused.code, refused.message), "mail") from None
        except aiosmtplib.SMTPException as error:
            raise self._lost(conn, error) from None

    async def _rcpt(self, conn: Connection, address: str, dsn: bool) -> Reply | None:
        options = ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{xtext(address)}"] if dsn else []
        try:
            await conn.smtp.rcpt(address, options=options)
        except aiosmtplib.SMTPResponseException as refused:
            reply = Reply(refused.code, refused.message)
            if reply.code == 421:
                raise self._refusal(conn, reply, "rcpt") from None
            return reply
        except aiosmtplib.SMTPException as error:
            raise self._lost(conn, error) from None
        return None

    async def _data(self, conn: Connection, data: bytes) -> None:
        try:
            await conn.smtp.data(data)
        except aiosmtplib.SMTPResponseException as refused:
            raise self._refusal(conn, Reply(refused.code, refused.message), "data") from None
        except aiosmtplib.SMTPException as error:
            raise self._lost(conn, error) from None

    async def _rset(self, conn: Connection) -> None:
        try:
            await conn.smtp.rset()
        except aiosmtplib.SMTPException:
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
