"""Connections to one relay: opened with TLS verified and a login, kept in a small
pool, reused for many messages, closed when idle, replaced when broken.

A connection is opened by aiosmtplib (TCP, TLS, EHLO, AUTH) and then carries its
transactions with our own :class:`.session.SmtpSession` (pipelined where the relay
offers it; see that module for why). aiosmtplib's ``SMTP`` is one connection and
has no pool (providers.md 1.2), so this is one: at most ``maxConnections`` open at
once (waiters queue for a free one); a connection idle for ``idle_seconds`` is
closed by a reaper; one that failed (a timeout, a dropped socket, a ``421``) is
closed rather than given back. A reused connection is checked cheaply by the next
command: if it turns out dead before the message was handed over, the caller gets
:class:`StaleConnection` and opens a new one.

TLS: ``starttls`` requires the upgrade (a relay that does not offer STARTTLS is a
configuration error, not a reason to send in clear), ``tls`` is implicit TLS, both
verify the certificate and host name against the system's trust store or the
``tlsCaFile`` bundle. ``none`` is plain text and only for a relay on a trusted
network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import aiosmtplib

from tidings.providers.errors import ConfigurationError, ConnectionDown, DeliveryError
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.errors import Reply, error_for
from tidings.providers.smtp.session import SessionLost, SmtpSession, UnexpectedReply

log = logging.getLogger("tidings.providers.smtp")

IDLE_SECONDS = 15.0


class StaleConnection(Exception):
    """A pooled connection was found closed before the message was handed over."""


@dataclass(eq=False)
class Connection:
    session: SmtpSession
    last_used: float = field(default_factory=time.monotonic)
    reused: bool = False
    broken: bool = False
    messages: int = 0

    @property
    def dsn(self) -> bool:
        return self.session.dsn


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Verification on, always; a private relay's CA added from ``tlsCaFile``."""
    context = ssl.create_default_context(cafile=config.tls_ca_file)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def open_connection(config: SmtpConfig) -> SmtpSession:
    """Connect, secure and log in (aiosmtplib), then hand the connection to a
    :class:`SmtpSession`; errors as the delivery error tree."""
    implicit = config.security == "tls"
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        timeout=config.timeout_seconds,
        use_tls=implicit,
        start_tls=False,
        tls_context=tls_context(config) if config.security != "none" else None,
        validate_certs=True,
        local_hostname=config.helo_name or socket.gethostname(),
    )
    try:
        await smtp.connect()
        # The extensions (STARTTLS, AUTH, DSN) are known from EHLO, said again after TLS.
        await smtp.ehlo()
        if config.security == "starttls":
            if not smtp.supports_extension("starttls"):
                raise ConfigurationError(
                    "tls_unavailable",
                    f"{config.host}:{config.port} does not offer STARTTLS; "
                    "use security 'tls' or a relay that does.",
                )
            await smtp.starttls(tls_context=tls_context(config))
            await smtp.ehlo()
        if config.username:
            password = config.password.get_secret_value() if config.password else ""
            try:
                await smtp.login(config.username, password)
            except aiosmtplib.SMTPResponseException as refused:
                raise error_for(Reply(refused.code, refused.message), stage="auth") from None
            except aiosmtplib.SMTPException as problem:
                raise ConfigurationError("auth_unavailable", str(problem)) from None
        # Not isinstance(asyncio.Transport): uvloop's transports (tidings serve) are not.
        transport = cast(asyncio.Transport | None, smtp.transport)
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("closed during the login")
        # aiosmtplib is done with it: its last reply was read, nothing is pending.
        return SmtpSession(
            transport, extensions=set(smtp.esmtp_extensions), timeout=config.timeout_seconds
        )
    except DeliveryError:
        smtp.close()
        raise
    except BaseException as error:
        smtp.close()
        raise connection_error(config, error) from None


def connection_error(config: SmtpConfig, error: BaseException) -> DeliveryError:
    where = f"{config.host}:{config.port}"
    if isinstance(error, ssl.SSLCertVerificationError) or (
        isinstance(error, aiosmtplib.SMTPConnectError)
        and isinstance(error.__cause__, ssl.SSLCertVerificationError)
    ):
        return ConfigurationError(
            "tls_unverified",
            f"The certificate of {where} could not be verified; "
            "give its CA as tlsCaFile for a private relay.",
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error_for(Reply(error.code, error.message), stage="connect")
    if isinstance(error, UnexpectedReply):
        return error_for(error.reply, stage="connect")
    if isinstance(error, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return ConnectionDown("relay_timeout", f"{where} did not answer in time.")
    if isinstance(error, (aiosmtplib.SMTPException, SessionLost)):
        return ConnectionDown("relay_unreachable", f"{where}: {error}")
    if isinstance(error, OSError):
        return ConnectionDown("relay_unreachable", f"{where}: {error.strerror or error}")
    if isinstance(error, Exception):
        return ConnectionDown("relay_unreachable", f"{where}: {type(error).__name__}")
    raise error


class SmtpPool:
    """At most ``size`` connections to one relay; idle ones are kept for reuse."""

    def __init__(
        self, config: SmtpConfig, *, size: int, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._config = config
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._idle_seconds = idle_seconds
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        # How many connections this pool opened, ever (the reuse tests read it).
        self.opened = 0

    @contextlib.asynccontextmanager
    async def connection(self, *, fresh: bool = False) -> AsyncIterator[Connection]:
        """A connection for one message; given back afterwards unless it broke."""
        if self._closed:
            raise ConnectionDown("provider_closed", "The provider was closed.")
        async with self._slots:
            conn = None if fresh else self._take_idle()
            if conn is None:
                conn = Connection(await open_connection(self._config))
                self.opened += 1
            try:
                yield conn
            except DeliveryError:
                # A refusal leaves the connection usable (the caller reset it or
                # marked it broken); anything else leaves it in an unknown state.
                raise
            except BaseException:
                conn.broken = True
                raise
            finally:
                self._give_back(conn)

    def _take_idle(self) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.session.is_connected and not self._expired(conn, time.monotonic()):
                conn.reused = True
                return conn
            _close_quietly(conn)
        return None

    def _give_back(self, conn: Connection) -> None:
        conn.last_used = time.monotonic()
        if conn.broken or self._closed or not conn.session.is_connected:
            _close_quietly(conn)
            return
        self._idle.append(conn)
        self._start_reaper()

    def _expired(self, conn: Connection, now: float) -> bool:
        return now - conn.last_used >= self._idle_seconds

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="smtp-pool-reaper")

    async def _reap(self) -> None:
        while self._idle:
            await asyncio.sleep(self._idle_seconds / 2)
            now = time.monotonic()
            expired = [conn for conn in self._idle if self._expired(conn, now)]
            # Out of the idle list before awaiting, so nobody takes one being closed.
            self._idle[:] = [conn for conn in self._idle if conn not in expired]
            for conn in expired:
                await _quit(conn)

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        idle, self._idle = self._idle, []
        for conn in idle:
            await _quit(conn)


async def _quit(conn: Connection) -> None:
    """QUIT politely, briefly; a relay that does not answer is just dropped."""
    try:
        await conn.session.quit()
    except Exception:
        log.debug("QUIT failed; closing the connection")
    finally:
        _close_quietly(conn)


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.session.close()
