"""The providers' use cases, behind ``/api/v4/providers`` and ``tidings providers``.

One path for both: the API router and the command line build a
:class:`ProviderService` with their dependencies and call it with a
:class:`TenantScope`. It validates a kind's config with the kind's model (422
naming the fields), seals the secrets with the key ring before anything is
written, answers secrets as ``********``, keeps secrets a ``PATCH`` leaves out (or
sends back masked), and never logs a config. In the sandbox the providers are the
simulated ones, listed as kind ``sandbox``; changing them answers 409
``sandbox_is_simulated``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import Conflict, FieldError, NotFound, Unprocessable
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing, SecretUnavailable
from tidings.core.tenancy import TenantScope
from tidings.db.group_commit import GroupCommitter
from tidings.idempotency.service import KeyScope, StoredAnswer, add_once
from tidings.providers.base import CheckResult, ProviderDeps
from tidings.providers.directory import sandbox_provider_id
from tidings.providers.errors import DeliveryError
from tidings.providers.inbox import describe
from tidings.providers.models import ProviderRow
from tidings.providers.registry import (
    CHANNELS,
    MASK,
    ConfigProblem,
    KindRegistry,
    KindSpec,
    ProviderIdentity,
    parse_config,
    shown_config,
    split_config,
)
from tidings.providers.repository import InboxRepository, ProviderRepository
from tidings.providers.schemas import (
    CheckOut,
    ProviderCreate,
    ProviderError,
    ProviderOut,
    ProviderUpdate,
    UnmatchedOut,
)

CHECK_TIMEOUT_SECONDS = 20.0

__all__ = ["ProviderService", "TenantScope"]


def _simulated(scope: TenantScope) -> Conflict:
    return Conflict(
        "The sandbox's providers are simulated and cannot be changed; configure real "
        "providers in production.",
        code="sandbox_is_simulated",
    )


def _problem(problem: ConfigProblem) -> Unprocessable:
    return Unprocessable(
        str(problem),
        errors=[FieldError(e["field"], e["code"], e["message"]) for e in problem.errors],
    )


class ProviderService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        writer: GroupCommitter,
        kinds: KindRegistry,
        key_ring: KeyRing,
        clock: Clock,
        deps: ProviderDeps,
        on_change: Callable[[str, str, Environment, str], None] = lambda *_: None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._kinds = kinds
        self._ring = key_ring
        self._clock = clock
        self._deps = deps
        self._on_change = on_change

    # -- reading ---------------------------------------------------------------------

    async def page(
        self, scope: TenantScope, *, after: str | None, limit: int, base_url: str | None = None
    ) -> list[ProviderOut]:
        if scope.environment == Environment.SANDBOX:
            simulated = [self._sandbox_out(channel) for channel in sorted(CHANNELS)]
            return [p for p in simulated if after is None or p.id > after][:limit]
        async with self._sessions() as session:
            rows = await ProviderRepository(session).page(
                scope.account_id, scope.environment, after=after, limit=limit
            )
        return [self.out(row, base_url) for row in rows]

    async def get(
        self, scope: TenantScope, provider_id: str, *, base_url: str | None = None
    ) -> ProviderOut:
        if scope.environment == Environment.SANDBOX:
            for channel in CHANNELS:
                if provider_id == sandbox_provider_id(channel):
                    return self._sandbox_out(channel)
            raise self._not_found(provider_id)
        return self.out(await self.row(scope, provider_id), base_url)

    async def row(self, scope: TenantScope, provider_id: str) -> ProviderRow:
        async with self._sessions() as session:
            row = await ProviderRepository(session).get(
                provider_id, scope.account_id, scope.environment
            )
        if row is None:
            raise self._not_found(provider_id)
        return row

    @staticmethod
    def _not_found(provider_id: str) -> NotFound:
        return NotFound(f"There is no provider {provider_id} in this account and environment.")

    # -- changing --------------------------------------------------------------------

    async def create(
        self, scope: TenantScope, body: ProviderCreate, key: KeyScope | None = None
    ) -> ProviderRow | StoredAnswer:
        if scope.environment == Environment.SANDBOX:
            raise _simulated(scope)
        try:
            spec = self._kinds.spec_for(body.channel, body.kind)
            public, secrets = split_config(spec, parse_config(spec, body.config))
        except ConfigProblem as problem:
            raise _problem(problem) from None
        now = self._clock.now()
        row = ProviderRow(
            id=new_id("prv"),
            account_id=scope.account_id,
            environment=scope.environment.value,
            channel=body.channel,
            kind=body.kind,
            name=body.name,
            priority=body.priority,
            enabled=body.enabled,
            config=public,
            secrets={name: self._ring.seal(value) for name, value in secrets.items()},
            health="unknown",
            last_error=None,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        earlier = await add_once(self._writer, self._sessions, key, now, row, row.id)
        if earlier is not None:
            return earlier
        self._changed(row)
        return row

    async def update(
        self,
        scope: TenantScope,
        provider_id: str,
        patch: ProviderUpdate,
        *,
        base_url: str | None = None,
    ) -> ProviderOut:
        if scope.environment == Environment.SANDBOX:
            raise _simulated(scope)
        now = self._clock.now()

        async def write(session: AsyncSession) -> ProviderRow:
            row = await ProviderRepository(session).get(
                provider_id, scope.account_id, scope.environment
            )
            if row is None:
                raise self._not_found(provider_id)
            if patch.config is not None:
                self._merge_config(row, patch.config)
            if patch.name is not None:
                row.name = patch.name
            if patch.priority is not None:
                row.priority = patch.priority
            if patch.enabled is not None:
                row.enabled = patch.enabled
            row.updated_at = now
            # A changed provider is judged afresh.
            row.health, row.last_error = "unknown", None
            await session.flush()
            return row

        row = await self._writer.submit(write)
        self._changed(row)
        return self.out(row, base_url)

    def _merge_config(self, row: ProviderRow, given: Mapping[str, Any]) -> None:
        spec = self._kinds.get(row.kind)
        if spec is None:
            raise Unprocessable(f"The provider kind {row.kind!r} is no longer known.")
        kept = {
            name: sealed
            for name, sealed in row.secrets.items()
            if name not in given or given[name] in (MASK, None)
        }
        try:
            opened = {name: self._ring.open(sealed) for name, sealed in kept.items()}
        except SecretUnavailable as error:
            raise Unprocessable(
                f"A stored secret cannot be opened ({error.reason}): send every secret again.",
                code="secret_unavailable",
            ) from None
        fresh = {k: v for k, v in given.items() if not (k in spec.secret_fields and v == MASK)}
        try:
            # A PATCH changes the fields it names; the others keep their values (those
            # the kind still knows: a field it dropped would make the config invalid).
            known = {info.alias or name for name, info in spec.config.model_fields.items()}
            kept_public = {k: v for k, v in row.config.items() if k in known}
            merged = {**kept_public, **fresh, **opened}
            public, secrets = split_config(spec, parse_config(spec, merged))
        except ConfigProblem as problem:
            raise _problem(problem) from None
        row.config = public
        row.secrets = {
            name: kept[name] if name in kept else self._ring.seal(value)
            for name, value in secrets.items()
        }

    async def delete(self, scope: TenantScope, provider_id: str) -> None:
        """Removed at once, or, while messages it took are not final, disabled and
        hidden until housekeeping sees them final."""
        if scope.environment == Environment.SANDBOX:
            raise _simulated(scope)
        now = self._clock.now()

        async def write(session: AsyncSession) -> ProviderRow:
            repo = ProviderRepository(session)
            row = await repo.get(provider_id, scope.account_id, scope.environment)
            if row is None:
                raise self._not_found(provider_id)
            if await repo.in_flight(row.id, now):
                row.enabled = False
                row.deleted_at = now
                row.updated_at = now
            else:
                await repo.remove(row)
            return row

        row = await self._writer.submit(write)
        self._changed(row)

    def _changed(self, row: ProviderRow) -> None:
        self._on_change(row.id, row.account_id, Environment(row.environment), row.channel)

    # -- checking --------------------------------------------------------------------

    async def check(self, scope: TenantScope, provider_id: str) -> CheckOut:
        if scope.environment == Environment.SANDBOX:
            await self.get(scope, provider_id)
            return CheckOut(
                ok=True, latency_ms=0, detail="The sandbox's simulated network is always there."
            )
        row = await self.row(scope, provider_id)
        result = await self._check_row(row)
        health = "ok" if result.ok else "failing"
        error = None if result.ok else {"code": "check_failed", "message": result.detail}

        async def note(session: AsyncSession) -> None:
            await ProviderRepository(session).set_health(row.id, health, error, self._clock.now())

        await self._writer.submit(note)
        self._changed(row)
        return CheckOut(ok=result.ok, latency_ms=result.latency_ms, detail=result.detail)

    async def _check_row(self, row: ProviderRow) -> CheckResult:
        started = time.perf_counter()

        def result(ok: bool, detail: str) -> CheckResult:
            return CheckResult(ok, round((time.perf_counter() - started) * 1000), detail)

        spec = self._kinds.get(row.kind)
        if spec is None:
            return result(False, f"The provider kind {row.kind!r} is not known.")
        try:
            secrets = {name: self._ring.open(sealed) for name, sealed in row.secrets.items()}
            config = parse_config(spec, {**row.config, **secrets})
        except SecretUnavailable as error:
            return result(False, f"A stored secret cannot be opened: {error.reason}.")
        except ConfigProblem as problem:
            fields = ", ".join(item["field"] for item in problem.errors)
            return result(False, f"The stored config is not valid ({fields}).")
        provider = spec.build(self._identity(row), config, self._deps)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                detail = await provider.check()
        except TimeoutError:
            return result(False, f"No answer within {CHECK_TIMEOUT_SECONDS:g} s.")
        except DeliveryError as error:
            return result(False, error.message)
        finally:
            await provider.close()
        return result(True, detail)

    @staticmethod
    def _identity(row: ProviderRow) -> ProviderIdentity:
        return ProviderIdentity(
            id=row.id,
            account_id=row.account_id,
            environment=Environment(row.environment),
            channel=row.channel,
            kind=row.kind,
            name=row.name,
        )

    # -- what providers reported that matched nothing ----------------------------------

    async def unmatched(
        self, scope: TenantScope, provider_id: str, *, after: str | None, limit: int
    ) -> list[UnmatchedOut]:
        await self.get(scope, provider_id)
        if scope.environment == Environment.SANDBOX:
            # The simulated providers are shared: their reports are not the account's.
            return []
        cursor = int(after) if after and after.isdigit() else None
        async with self._sessions() as session:
            rows = await InboxRepository(session).unmatched(provider_id, after=cursor, limit=limit)
        return [UnmatchedOut.model_validate(describe(row)) for row in rows]

    # -- answers -----------------------------------------------------------------------

    def out(self, row: ProviderRow, base_url: str | None = None) -> ProviderOut:
        spec: KindSpec | None = self._kinds.get(row.kind)
        inbound = None
        if spec is not None and spec.inbound_path and base_url is not None:
            # The contract's form: /inbound/<channel>/<provider id> (the edge takes the
            # kind's name too).
            inbound = f"{base_url.rstrip('/')}/inbound/{row.channel}/{row.id}"
        error = row.last_error
        return ProviderOut(
            id=row.id,
            channel=row.channel,
            kind=row.kind,
            name=row.name,
            priority=row.priority,
            enabled=row.enabled,
            health=row.health,
            last_error=None if not error else ProviderError.model_validate(error),
            config=shown_config(spec, row.config, row.secrets) if spec else dict(row.config),
            inbound_url=inbound,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _sandbox_out(self, channel: str) -> ProviderOut:
        epoch = datetime(2026, 1, 1, tzinfo=UTC)
        return ProviderOut(
            id=sandbox_provider_id(channel),
            channel=channel,
            kind="sandbox",
            name=f"Sandbox {channel}",
            priority=1,
            enabled=True,
            health="ok",
            config={},
            created_at=epoch,
            updated_at=epoch,
        )
