"""Which provider takes a message, and the one live instance of each in a process.

A channel's routes are its enabled providers in ``priority`` order, read from the
database and trusted for ``ROUTES_TTL_SECONDS`` (a change made through this
process is seen at once). :meth:`ProviderDirectory.choose` gives the first route
whose circuit is closed (:mod:`.circuit`), starting after the provider that took
the message's previous attempt when that attempt failed, so a retry moves on to
the next healthy provider. When every route is open, failing or unusable, the
message waits: it is handed back without using an attempt.

A provider is built the first time a message needs it, once (concurrent first
uses wait for the same build), and rebuilt when its row changes; the replaced
instance is closed after a grace period, as it may still be finishing a
submission. A stored config that no longer validates, or a secret that cannot be
opened, makes that one provider ``failing`` with the reason; nothing else is
affected. Health changes are written to the provider's row, which the API and
``/readyz`` show.

The sandbox has one simulated provider per channel, shared by every account
(``prv_sandbox_<channel>``); it holds no per-account state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.environments import Environment
from tidings.core.errors import ServiceUnavailable
from tidings.core.key_ring import KeyRing, SecretUnavailable
from tidings.core.single_flight import SingleFlight
from tidings.db.group_commit import GroupCommitter
from tidings.providers.base import Provider, ProviderDeps
from tidings.providers.circuit import CircuitBreaker, CircuitState
from tidings.providers.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    ThrottledError,
)
from tidings.providers.inbox import ReportSource
from tidings.providers.models import ProviderRow
from tidings.providers.registry import (
    CHANNELS,
    Capabilities,
    ConfigProblem,
    KindRegistry,
    ProviderIdentity,
    parse_config,
)
from tidings.providers.repository import ProviderRepository

log = logging.getLogger("tidings.providers")

ROUTES_TTL_SECONDS = 2.0
# How often the providers of persistent kinds are looked up again (a change made
# through this process is seen at once).
PERSISTENT_REFRESH_SECONDS = 10.0
RETIRE_GRACE_SECONDS = 30.0
SANDBOX_KIND = "simulator"


def sandbox_provider_id(channel: str) -> str:
    return f"prv_sandbox_{channel}"


@dataclass(frozen=True, slots=True)
class Route:
    """A provider as routing sees it: its row's values, frozen."""

    id: str
    account_id: str | None
    environment: Environment
    channel: str
    kind: str
    name: str
    config: dict[str, Any]
    secrets: dict[str, str]
    version: str

    @classmethod
    def of(cls, row: ProviderRow) -> Route:
        return cls(
            id=row.id,
            account_id=row.account_id,
            environment=Environment(row.environment),
            channel=row.channel,
            kind=row.kind,
            name=row.name,
            config=dict(row.config),
            secrets=dict(row.secrets),
            version=row.updated_at.isoformat(),
        )


@dataclass(frozen=True, slots=True)
class Choice:
    route: Route
    provider: Provider
    # The provider's agreed messages a second (None: unpaced), and its concurrency.
    rate: float | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class NoProvider:
    """Nothing can take the message now; try again in ``retry_in`` seconds."""

    code: str
    reason: str
    retry_in: float


@dataclass
class _Live:
    version: str
    provider: Provider | None
    problem: str | None
    rate: float | None = None
    concurrency: int | None = None


class ProviderDirectory:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        writer: GroupCommitter,
        kinds: KindRegistry,
        deps: ProviderDeps,
        key_ring: KeyRing,
        breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        retire_grace_seconds: float = RETIRE_GRACE_SECONDS,
    ) -> None:
        self._retire_grace = retire_grace_seconds
        self._sessions = sessions
        self._writer = writer
        self.kinds = kinds
        self._deps = deps
        self._ring = key_ring
        self._new_breaker = breaker
        self._routes: dict[tuple[str, str, str], tuple[float, list[Route]]] = {}
        # The read of a key's routes in flight, shared by everyone who asks meanwhile:
        # when the cache runs out under load, one read instead of one per message.
        self._reading: SingleFlight[tuple[str, str, str], list[Route]] = SingleFlight()
        # Bumped by changed(): a read that began before a change is not cached.
        self._generation: dict[tuple[str, str, str], int] = {}
        self._live: dict[str, _Live] = {}
        self._building: dict[str, asyncio.Future[_Live]] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._health: dict[str, str] = {}
        # provider id -> (read at, what its reports mean): a provider's kind, account
        # and environment never change, and the inbox asks once per batch it applies.
        self._sources: dict[str, tuple[float, ReportSource]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._sandbox = {channel: self._sandbox_route(channel) for channel in CHANNELS}
        self._persistent_wake = asyncio.Event()

    # -- what requests need, without building anything -------------------------------

    async def find(
        self, account_id: str, environment: Environment, channel: str
    ) -> Capabilities | None:
        routes = await self.routes(account_id, environment, channel)
        if not routes:
            return None
        specs = [self.kinds.get(route.kind) for route in routes]
        numbers: frozenset[str] = frozenset()
        for spec in specs:
            if spec is not None:
                numbers |= spec.test_numbers(channel)
        simulated = next(
            (spec.simulated_inbound for spec in specs if spec and spec.simulated_inbound), None
        )
        return Capabilities(
            channel=channel,
            kinds=tuple(route.kind for route in routes),
            now=self._deps.clock.now,
            test_numbers=numbers,
            simulated_inbound=(
                None if simulated is None else (lambda contact: simulated(channel, contact))
            ),
        )

    async def require(
        self, account_id: str, environment: Environment, channel: str
    ) -> Capabilities:
        found = await self.find(account_id, environment, channel)
        if found is None:
            raise ServiceUnavailable(
                f"No {channel} provider is configured for this account in "
                f"{environment.value}; add one with POST /api/v4/providers "
                "or `tidings providers add`.",
                code="channel_not_configured",
            )
        return found

    async def routes(self, account_id: str, environment: Environment, channel: str) -> list[Route]:
        if environment == Environment.SANDBOX:
            return [self._sandbox[channel]]
        key = (account_id, environment.value, channel)
        cached = self._routes.get(key)
        if cached is not None and time.monotonic() - cached[0] < ROUTES_TTL_SECONDS:
            return cached[1]
        return await self._reading.run(key, lambda: self._read_routes(key))

    async def _read_routes(self, key: tuple[str, str, str]) -> list[Route]:
        started = time.monotonic()
        generation = self._generation.get(key, 0)
        async with self._sessions() as session:
            rows = await ProviderRepository(session).routes(*key)
        routes = [Route.of(row) for row in rows]
        if self._generation.get(key, 0) == generation:
            self._routes[key] = (started, routes)
        return routes

    def changed(self, account_id: str, environment: Environment, channel: str) -> None:
        """A provider of this channel was added, changed or removed here."""
        key = (account_id, environment.value, channel)
        self._routes.pop(key, None)
        # A read in flight may have begun before the change: the next asker reads anew.
        self._reading.forget(key)
        self._generation[key] = self._generation.get(key, 0) + 1
        self._persistent_wake.set()

    # -- providers that run without messages (SMPP binds) ----------------------------

    async def start_persistent(self) -> None:
        """Build and start every enabled provider of a persistent kind (they receive
        on their own connections, so must run even when nothing is sent); close
        those disabled or removed since."""
        async with self._sessions() as session:
            rows = await ProviderRepository(session).every()
        wanted: set[str] = set()
        for row in rows:
            spec = self.kinds.get(row.kind)
            if spec is None or not spec.persistent or not row.enabled or row.deleted_at:
                continue
            wanted.add(row.id)
            route = Route.of(row)
            live = await self._instance(route)
            start = getattr(live.provider, "start", None)
            if start is not None:
                await start()
            # Credentials refused while nothing is sent: failing all the same.
            refused = getattr(live.provider, "refused", None)
            if isinstance(refused, ConfigurationError):
                await self.outcome(route, refused)
        for provider_id, live in list(self._live.items()):
            spec = self.kinds.get(live.provider.kind) if live.provider else None
            if spec is not None and spec.persistent and provider_id not in wanted:
                del self._live[provider_id]
                assert live.provider is not None
                await live.provider.close()

    async def run_persistent(self) -> None:
        """:meth:`start_persistent` now, on every change made here, and every
        ``PERSISTENT_REFRESH_SECONDS`` for changes made by other processes."""
        while True:
            self._persistent_wake.clear()
            try:
                await self.start_persistent()
            except Exception:
                log.exception("starting the persistent providers failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._persistent_wake.wait(), PERSISTENT_REFRESH_SECONDS)

    # -- choosing and building -------------------------------------------------------

    async def choose(
        self,
        account_id: str,
        environment: Environment,
        channel: str,
        *,
        after_failure_of: str | None = None,
    ) -> Choice | NoProvider:
        routes = await self.routes(account_id, environment, channel)
        if not routes:
            return NoProvider(
                "channel_not_configured",
                f"No {channel} provider is configured for this account.",
                60.0,
            )
        if after_failure_of is not None and len(routes) > 1:
            # The previous attempt failed there: the others first, then it again.
            routes = [r for r in routes if r.id != after_failure_of] + [
                r for r in routes if r.id == after_failure_of
            ]
        waits: list[float] = []
        reasons: list[str] = []
        for route in routes:
            breaker = self.breaker(route.id)
            if not breaker.allows():
                waits.append(breaker.retry_in())
                reasons.append(f"{route.name}: circuit open")
                continue
            live = await self._instance(route)
            if live.provider is None:
                breaker.unused()
                reasons.append(f"{route.name}: {live.problem}")
                continue
            return Choice(route, live.provider, live.rate, live.concurrency)
        return NoProvider(
            "provider_unavailable",
            "No provider can take the message now (" + "; ".join(reasons) + ").",
            max(min(waits), 0.5) if waits else 30.0,
        )

    def breaker(self, provider_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(provider_id)
        if breaker is None:
            breaker = self._breakers[provider_id] = self._new_breaker()
        return breaker

    def circuits(self) -> list[tuple[str, str]]:
        return [
            (provider_id, breaker.state.value) for provider_id, breaker in self._breakers.items()
        ]

    def circuit(self, provider_id: str) -> CircuitState:
        breaker = self._breakers.get(provider_id)
        return CircuitState.CLOSED if breaker is None else breaker.state

    async def _instance(self, route: Route) -> _Live:
        live = self._live.get(route.id)
        if live is not None and live.version == route.version:
            return live
        building = self._building.get(route.id)
        if building is not None:
            return await asyncio.shield(building)
        future: asyncio.Future[_Live] = asyncio.get_running_loop().create_future()
        self._building[route.id] = future
        try:
            if route.id in self._live:
                # The row changed (here or in another process): its health and circuit
                # are judged afresh, as the process that changed it does.
                self.forget_health(route.id)
            old = self._live.get(route.id)
            spec = self.kinds.get(route.kind)
            if old is not None and old.provider is not None and spec and spec.persistent:
                # A kind that holds binds closes the old ones first: an SMSC that caps
                # binds per account would refuse the new ones while both are up (the
                # old one's unanswered submissions are retried: at least once).
                del self._live[route.id]
                await old.provider.close()
                old = None
            built = self._build(route)
            if built.problem is not None:
                await self._note_health(route, "failing", "invalid_config", built.problem)
            self._live[route.id] = built
            if old is not None and old.provider is not None:
                self._retire(old.provider)
            future.set_result(built)
            return built
        except BaseException as error:
            future.set_exception(error)
            raise
        finally:
            del self._building[route.id]

    def _build(self, route: Route) -> _Live:
        spec = self.kinds.get(route.kind)
        if spec is None:
            return _Live(route.version, None, f"the provider kind {route.kind!r} is not known")
        try:
            secrets = {name: self._ring.open(sealed) for name, sealed in route.secrets.items()}
        except SecretUnavailable as error:
            log.error("provider %s: a secret cannot be opened (%s)", route.id, error.reason)
            return _Live(route.version, None, f"a stored secret cannot be opened: {error.reason}")
        try:
            config = parse_config(spec, {**route.config, **secrets})
        except ConfigProblem as problem:
            fields = ", ".join(item["field"] for item in problem.errors)
            log.error("provider %s: its stored config is not valid (%s)", route.id, fields)
            return _Live(route.version, None, f"the stored config is not valid ({fields})")
        identity = ProviderIdentity(
            id=route.id,
            account_id=route.account_id,
            environment=route.environment,
            channel=route.channel,
            kind=route.kind,
            name=route.name,
        )
        return _Live(
            route.version,
            spec.build(identity, config, self._deps),
            None,
            rate=spec.rate(config),
            concurrency=spec.concurrency(config),
        )

    def _retire(self, provider: Provider) -> None:
        async def close_later() -> None:
            await asyncio.sleep(self._retire_grace)
            await provider.close()

        task = asyncio.create_task(close_later(), name=f"retire-{provider.id}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- outcomes and health ---------------------------------------------------------

    async def outcome(self, route: Route, error: DeliveryError | None) -> None:
        """What a submission to ``route`` came to: its circuit and health follow."""
        breaker = self.breaker(route.id)
        # A refusal or a "slow down" is the network working (the message was bad, the
        # pace too high): neither opens the circuit nor makes the provider failing.
        if error is None or isinstance(error, (PermanentDeliveryError, ThrottledError)):
            breaker.success()
            await self._note_health(route, "ok", None, None)
        elif isinstance(error, ConfigurationError):
            # Credentials refused: no message should try it until a probe succeeds.
            breaker.trip()
            await self._note_health(route, "failing", error.code, error.message)
        else:
            was = breaker.state
            breaker.failure()
            if breaker.state == CircuitState.OPEN and was != CircuitState.OPEN:
                log.warning("provider %s: circuit opened after %s", route.id, error.code)
                await self._note_health(route, "failing", error.code, error.message)

    async def _note_health(
        self, route: Route, health: str, code: str | None, message: str | None
    ) -> None:
        if route.account_id is None or self._health.get(route.id) == health:
            return
        self._health[route.id] = health
        error = None if code is None else {"code": code, "message": message}
        at = self._deps.clock.now()

        async def write(session: AsyncSession) -> None:
            await ProviderRepository(session).set_health(route.id, health, error, at)

        try:
            await self._writer.submit(write)
        except Exception:
            # Health is advisory: the next change writes it again.
            self._health.pop(route.id, None)
            log.exception("recording provider %s health failed", route.id)

    def forget_health(self, provider_id: str) -> None:
        self._health.pop(provider_id, None)
        self._breakers.pop(provider_id, None)

    # -- the inbox's view --------------------------------------------------------------

    async def source(self, provider_id: str) -> ReportSource | None:
        for route in self._sandbox.values():
            if route.id == provider_id:
                spec = self.kinds.get(SANDBOX_KIND)
                assert spec is not None
                return ReportSource(SANDBOX_KIND, spec.parse_report, None, Environment.SANDBOX)
        cached = self._sources.get(provider_id)
        if cached is not None and time.monotonic() - cached[0] < ROUTES_TTL_SECONDS:
            return cached[1]
        started = time.monotonic()
        async with self._sessions() as session:
            row = await ProviderRepository(session).by_id(provider_id)
        if row is None:
            # Not kept: a provider purged meanwhile is unknown from the next batch on.
            self._sources.pop(provider_id, None)
            return None
        spec = self.kinds.get(row.kind)
        if spec is None:
            return None
        source = ReportSource(
            row.kind, spec.parse_report, row.account_id, Environment(row.environment)
        )
        self._sources[provider_id] = (started, source)
        return source

    async def config_of(self, provider_id: str) -> tuple[Route, Any] | None:
        """A configured provider's route and opened config, for the inbound edge to
        check its network's webhooks with; None when there is no such provider.
        Raises ``SecretUnavailable`` or ``ConfigProblem`` when it cannot be opened."""
        async with self._sessions() as session:
            row = await ProviderRepository(session).by_id(provider_id)
        if row is None or row.deleted_at is not None or row.account_id is None:
            return None
        route = Route.of(row)
        spec = self.kinds.get(route.kind)
        if spec is None:
            return None
        secrets = {name: self._ring.open(sealed) for name, sealed in route.secrets.items()}
        return route, parse_config(spec, {**route.config, **secrets})

    def sandbox_provider(self, channel: str) -> Provider:
        live = self._live.get(self._sandbox[channel].id)
        if live is None or live.provider is None:
            live = self._build(self._sandbox[channel])
            self._live[self._sandbox[channel].id] = live
        assert live.provider is not None
        return live.provider

    def _sandbox_route(self, channel: str) -> Route:
        return Route(
            id=sandbox_provider_id(channel),
            account_id=None,
            environment=Environment.SANDBOX,
            channel=channel,
            kind=SANDBOX_KIND,
            name=f"Sandbox {channel}",
            config={},
            secrets={},
            version="sandbox",
        )

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        for task in list(self._retiring):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for live in list(self._live.values()):
            if live.provider is not None:
                await live.provider.close()
        self._live.clear()
