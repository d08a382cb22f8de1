"""The use cases behind ``/api/v4/email/domains``, the periodic re-check, and the
keys a verified domain signs with.

Production only: in the sandbox the list answers the simulated, always verified
``sandbox.test`` and changes answer 409 ``sandbox_is_simulated`` (as providers do).
A domain is ``verified`` once its RSA DKIM record matches; it stays usable for
sending after that even if a later check fails (a DNS hiccup must not stop mail),
but its status turns ``failing`` and a ``domain.updated`` event tells the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import Conflict, FieldError, NotFound, Unprocessable
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing
from tidings.domains.keys import new_keys, new_selector
from tidings.domains.models import EmailDomain
from tidings.domains.records import (
    FAILING,
    PENDING,
    VERIFIED,
    Record,
    check_record,
    expected_records,
    settle,
)
from tidings.domains.resolver import DnsUnavailable, Lookup
from tidings.domains.signing import SigningKeys
from tidings.messages.models import OutboxEvent
from tidings.settings import EmailSettings

log = logging.getLogger("tidings.domains")

SANDBOX_DOMAIN = "sandbox.test"
_DOMAIN = re.compile(
    r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])"
)


@dataclass(frozen=True, slots=True)
class DomainScope:
    account_id: str
    environment: Environment


def normalise_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    if not _DOMAIN.fullmatch(domain):
        message = "Give a domain name such as example.com."
        raise Unprocessable(message, errors=[FieldError("domain", "invalid_domain", message)])
    return domain


class DomainService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        key_ring: KeyRing,
        clock: Clock,
        email: EmailSettings,
        lookup: Callable[[], Lookup],
    ) -> None:
        self._sessions = sessions
        self._ring = key_ring
        self._clock = clock
        self._email = email
        self._lookup = lookup

    # -- the API's use cases ------------------------------------------------------------

    async def create(self, scope: DomainScope, domain: str) -> EmailDomain:
        _production_only(scope)
        name = normalise_domain(domain)
        keys = await asyncio.to_thread(new_keys)
        now = self._clock.now()
        row = EmailDomain(
            id=new_id("dom"),
            account_id=scope.account_id,
            environment=scope.environment.value,
            domain=name,
            selector=new_selector(),
            rsa_public=keys.rsa_public,
            ed25519_public=keys.ed25519_public,
            secrets={
                "rsa": self._ring.seal(keys.rsa_private_pem),
                "ed25519": self._ring.seal(keys.ed25519_seed),
            },
            status=PENDING,
            checks=None,
            created_at=now,
            updated_at=now,
        )
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict(
                    f"{name} is already a sending domain of this account.", code="domain_exists"
                ) from None
        return row

    async def all(self, scope: DomainScope) -> list[EmailDomain]:
        if scope.environment == Environment.SANDBOX:
            return []
        async with self._sessions() as session:
            found = await session.scalars(
                select(EmailDomain)
                .where(
                    EmailDomain.account_id == scope.account_id,
                    EmailDomain.environment == scope.environment.value,
                )
                .order_by(EmailDomain.domain)
            )
            return list(found)

    async def get(self, scope: DomainScope, key: str) -> EmailDomain:
        async with self._sessions() as session:
            row = await self._find(session, scope, key)
            if row is None:
                raise NotFound(f"There is no sending domain {key} in this account.")
            return row

    async def delete(self, scope: DomainScope, key: str) -> None:
        _production_only(scope)
        async with self._sessions() as session:
            row = await self._find(session, scope, key)
            if row is None:
                raise NotFound(f"There is no sending domain {key} in this account.")
            await session.delete(row)
            await session.commit()

    async def verify(self, scope: DomainScope, key: str) -> EmailDomain:
        _production_only(scope)
        async with self._sessions() as session:
            row = await self._find(session, scope, key)
            if row is None:
                raise NotFound(f"There is no sending domain {key} in this account.")
            await self._check(session, row)
            await session.commit()
            return row

    async def recheck_all(self) -> int:
        """Look every production domain up again; how many changed status."""
        changed = 0
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(EmailDomain).where(
                        EmailDomain.environment == Environment.PRODUCTION.value
                    )
                )
            )
            for row in rows:
                before = row.status
                try:
                    await self._check(session, row)
                except Unprocessable as problem:
                    log.warning("domain %s: %s", row.domain, problem.detail)
                    continue
                changed += row.status != before
            await session.commit()
        return changed

    async def run_rechecks(self) -> None:
        """The periodic check (Postal's hourly one), for the runtime's supervisor."""
        while True:
            await asyncio.sleep(self._email.recheck_seconds)
            await self.recheck_all()

    # -- sending ------------------------------------------------------------------------

    async def signing_keys(
        self, account_id: str, environment: Environment, domain: str
    ) -> SigningKeys | None:
        """The keys of a domain that was verified; None when there is none."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(EmailDomain).where(
                    EmailDomain.account_id == account_id,
                    EmailDomain.environment == environment.value,
                    EmailDomain.domain == domain.lower(),
                )
            )
        if row is None or row.verified_at is None:
            return None
        return SigningKeys(
            domain=row.domain,
            selector=row.selector,
            rsa_private_pem=self._ring.open(row.secrets["rsa"]),
            ed25519_seed=self._ring.open(row.secrets["ed25519"]),
        )

    # -- answers ------------------------------------------------------------------------

    def records(self, row: EmailDomain) -> list[Record]:
        return expected_records(
            row.domain, row.selector, row.rsa_public, row.ed25519_public, self._email
        )

    def out(self, row: EmailDomain) -> dict[str, Any]:
        checks = row.checks or {}
        records = []
        for record in self.records(row):
            check = checks.get(record.purpose) or {}
            shown: dict[str, Any] = {
                "purpose": record.purpose,
                "type": record.type,
                "name": record.name,
                "value": record.value,
                "status": check.get("status", PENDING),
            }
            if record.type == "TXT":
                shown["strings"] = record.strings
            if check.get("status") not in (None, VERIFIED):
                shown["found"] = check.get("found", [])
                shown["problem"] = check.get("reason")
            records.append(shown)
        return {
            "id": row.id,
            "domain": row.domain,
            "status": row.status,
            "records": records,
            "checkedAt": _iso(row.checked_at),
            "verifiedAt": _iso(row.verified_at),
            "createdAt": _iso(row.created_at),
        }

    def sandbox_out(self) -> dict[str, Any]:
        return {
            "id": "dom_sandbox",
            "domain": SANDBOX_DOMAIN,
            "status": VERIFIED,
            "records": [],
            "checkedAt": None,
            "verifiedAt": None,
            "createdAt": None,
        }

    # -- helpers --------------------------------------------------------------------------

    async def _find(
        self, session: AsyncSession, scope: DomainScope, key: str
    ) -> EmailDomain | None:
        column = EmailDomain.id if key.startswith("dom_") else EmailDomain.domain
        return await session.scalar(
            select(EmailDomain).where(
                EmailDomain.account_id == scope.account_id,
                EmailDomain.environment == scope.environment.value,
                column == (key if key.startswith("dom_") else key.strip().lower().rstrip(".")),
            )
        )

    async def _check(self, session: AsyncSession, row: EmailDomain) -> None:
        lookup = self._lookup()
        before = dict(row.checks or {})
        checks: dict[str, Any] = {}
        for record in self.records(row):
            try:
                check = await check_record(record, lookup, self._email)
            except DnsUnavailable as error:
                raise Unprocessable(
                    f"DNS did not answer ({error}); try again.", code="dns_unavailable"
                ) from None
            previous = (before.get(record.purpose) or {}).get("status")
            checks[record.purpose] = settle(check, previous).as_json()
        now = self._clock.now()
        dkim = checks["dkim"]["status"]
        status = VERIFIED if dkim == VERIFIED else (FAILING if row.verified_at else dkim)
        newly_failing = sorted(
            purpose
            for purpose, check in checks.items()
            if check["status"] == FAILING and (before.get(purpose) or {}).get("status") != FAILING
        )
        row.checks, row.checked_at, row.updated_at = checks, now, now
        if status == VERIFIED and row.verified_at is None:
            row.verified_at = now
        changed = status != row.status
        row.status = status
        if before and (newly_failing or changed):
            session.add(
                OutboxEvent.new(
                    account_id=row.account_id,
                    environment=row.environment,
                    event_type="domain.updated",
                    subject_id=row.id,
                    payload={**self.out(row), "failing": newly_failing},
                    at=now,
                )
            )


def _production_only(scope: DomainScope) -> None:
    if scope.environment == Environment.SANDBOX:
        raise Conflict(
            "The sandbox's sending domain is simulated (sandbox.test) and cannot be changed.",
            code="sandbox_is_simulated",
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
