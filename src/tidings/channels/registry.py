"""Which provider serves a channel for an account in an environment.

The sandbox is served by the simulated providers, one per channel, shared by
every account (they hold no per-account state). Production providers are built
from an account's typed provider configuration through the factories registered
here, once, and never changed afterwards; a channel with no configuration has no
provider, and sends to it answer 503 ``channel_not_configured``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tidings.channels.base import Provider
from tidings.core.environments import Environment
from tidings.core.errors import ServiceUnavailable

CHANNELS = ("whatsapp", "sms", "email")

ProviderFactory = Callable[[dict[str, Any]], Provider]
ConfigLookup = Callable[[str, str], Awaitable[tuple[str, dict[str, Any]] | None]]


class ProviderRegistry:
    """Provider kinds by ``(channel, key)``; e.g. ``("email", "smtp")``."""

    def __init__(self) -> None:
        self._factories: dict[tuple[str, str], ProviderFactory] = {}

    def register(self, channel: str, key: str, factory: ProviderFactory) -> None:
        self._factories[(channel, key)] = factory

    def kinds(self, channel: str) -> list[str]:
        return sorted(key for (kind_channel, key) in self._factories if kind_channel == channel)

    def build(self, channel: str, key: str, config: dict[str, Any]) -> Provider:
        factory = self._factories.get((channel, key))
        if factory is None:
            raise KeyError(f"no {channel} provider named {key!r}")
        return factory(config)


class ProviderDirectory:
    def __init__(
        self,
        *,
        sandbox: dict[str, Provider],
        registry: ProviderRegistry,
        production_config: ConfigLookup,
    ) -> None:
        self._sandbox = sandbox
        self._registry = registry
        self._production_config = production_config
        self._built: dict[tuple[str, str], Provider] = {}

    async def find(self, account_id: str, environment: Environment, channel: str) -> Provider | None:
        if environment == Environment.SANDBOX:
            return self._sandbox.get(channel)
        built = self._built.get((account_id, channel))
        if built is not None:
            return built
        found = await self._production_config(account_id, channel)
        if found is None:
            return None
        key, config = found
        provider = self._registry.build(channel, key, config)
        self._built[(account_id, channel)] = provider
        return provider

    async def require(self, account_id: str, environment: Environment, channel: str) -> Provider:
        provider = await self.find(account_id, environment, channel)
        if provider is None:
            raise ServiceUnavailable(
                f"No {channel} provider is configured for this account in "
                f"{environment.value} (see docs/operations.md, Providers).",
                code="channel_not_configured",
            )
        return provider

    async def close(self) -> None:
        for provider in {*self._sandbox.values(), *self._built.values()}:
            await provider.close()
        self._built.clear()


async def no_production_providers(account_id: str, channel: str) -> tuple[str, dict[str, Any]] | None:
    return None
