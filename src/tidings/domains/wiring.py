"""The email side of one process, built once by the delivery runtime: the domain
service (API and periodic re-check), the outbound mail service the ``smtp`` kind
signs with (``ProviderDeps.extras``), and the bounce listener when configured."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.core.key_ring import KeyRing
from tidings.core.secrets import jwt_signing_key
from tidings.domains.outbound import DomainMail
from tidings.domains.resolver import DnsLookup, Lookup
from tidings.domains.service import DomainService
from tidings.domains.verp import Verp
from tidings.providers.base import ReportSink
from tidings.providers.smtp.listener import BounceListener, ReportHandler
from tidings.providers.smtp.provider import OUTBOUND_KEY
from tidings.settings import Settings

Start = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], None]


class EmailRuntime:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        key_ring: KeyRing,
        inbox: ReportSink,
        lookup: Callable[[], Lookup] | None = None,
    ) -> None:
        self._settings = settings
        nameservers = settings.dns.nameservers
        self.domains = DomainService(
            sessions=sessions,
            key_ring=key_ring,
            clock=clock,
            email=settings.email,
            lookup=lookup or (lambda: DnsLookup(nameservers)),
        )
        bounce_domain = settings.email.bounce_domain
        self.verp = Verp(jwt_signing_key(settings), bounce_domain) if bounce_domain else None
        self.outbound = DomainMail(
            self.domains, self.verp, signing_processes=settings.email.signing_processes
        )
        self.listener: BounceListener | None = None
        if self.verp is not None and settings.inbound_smtp.port is not None:
            handler = ReportHandler(verp=self.verp, sessions=sessions, inbox=inbox, clock=clock)
            self.listener = BounceListener(settings.inbound_smtp, handler)

    def provider_extras(self) -> dict[str, Any]:
        return {OUTBOUND_KEY: self.outbound}

    def start(self, start: Start) -> None:
        """Start the listener and the periodic domain check under the supervisor."""
        if self.listener is not None:
            start("bounce-listener", self.listener.serve)
        if self._settings.email.recheck_seconds:
            start("domain-recheck", self.domains.run_rechecks)

    async def close(self) -> None:
        """Stop the signing pool's processes, if they were started."""
        await self.outbound.close()
