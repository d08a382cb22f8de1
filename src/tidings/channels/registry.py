"""Which provider serves a channel for an account in an environment.

The sandbox is served by the simulated providers, one per channel, shared by
every account (they hold no per-account state). Production providers are built
from an account's typed provider configuration through the factories registered
here, once, and never changed afterwards; a channel with no configuration has no
provider, and sends to it answer 503 ``channel_not_configured``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tidings.channels.base import Provider
from tidings.channels.kinds import CHANNELS, CONFIG_MODELS, ProviderConfigError

__all__ = ["CHANNELS", "ProviderDirectory", "ProviderRegistry"]
from tidings.core.environments import Environment
from tidings.core.errors import ServiceUnavailable

ConfigLookup = Callable[[str, str], Awaitable[tuple[str, dict[str, Any]] | None]]
# How long a production provider's configuration is trusted before it is read again.
CONFIG_TTL_SECONDS = 30.0


class ProviderRegistry:
    """How to build each provider kind, by ``(channel, kind)``."""

    def __init__(self) -> None:
        self._factories: dict[tuple[str, str], Callable[[Any], Provider]] = {}

    def register(self, channel: str, kind: str, factory: Callable[[Any], Provider]) -> None:
        self._factories[(channel, kind)] = factory

    def build(self, channel: str, kind: str, config: dict[str, Any]) -> Provider:
        factory = self._factories.get((channel, kind))
        model = CONFIG_MODELS.get((channel, kind))
        if factory is None or model is None:
            raise ProviderConfigError(f"no {channel} provider kind {kind!r}")
        return factory(model.model_validate(config))


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
        # (account, channel) -> (when read, the configuration, its provider or None)
        self._built: dict[
            tuple[str, str], tuple[float, tuple[str, dict[str, Any]] | None, Provider | None]
        ] = {}
        self._retired: list[Provider] = []

    async def find(
        self, account_id: str, environment: Environment, channel: str
    ) -> Provider | None:
        if environment == Environment.SANDBOX:
            return self._sandbox.get(channel)
        key = (account_id, channel)
        cached = self._built.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CONFIG_TTL_SECONDS:
            return cached[2]
        found = await self._production_config(account_id, channel)
        if cached is not None and found == cached[1]:
            self._built[key] = (now, found, cached[2])
            return cached[2]
        # A changed configuration gets a new provider; the old one is closed at shutdown
        # (it may still be finishing a submission).
        if cached is not None and cached[2] is not None:
            self._retired.append(cached[2])
        provider = None if found is None else self._registry.build(channel, *found)
        self._built[key] = (now, found, provider)
        return provider

    async def require(self, account_id: str, environment: Environment, channel: str) -> Provider:
        provider = await self.find(account_id, environment, channel)
        if provider is None:
            raise ServiceUnavailable(
                f"No {channel} provider is configured for this account in "
                f"{environment.value}; an operator sets one with `tidings providers set`.",
                code="channel_not_configured",
            )
        return provider

    async def close(self) -> None:
        built = [entry[2] for entry in self._built.values() if entry[2] is not None]
        for provider in [*self._sandbox.values(), *built, *self._retired]:
            await provider.close()
        self._built.clear()
        self._retired.clear()
