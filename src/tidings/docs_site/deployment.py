"""What this deployment can really send in production: the provider kinds configured
per channel (enabled, in any account), for the landing page and the Swagger servers.

The pages must not promise "real providers" where none is configured: a production
send on a channel without one answers 503 ``channel_not_configured``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.providers.models import ProviderRow

CHANNELS = (("whatsapp", "WhatsApp"), ("sms", "SMS"), ("email", "Email"))


@dataclass(frozen=True, slots=True)
class ProductionProviders:
    """Kinds configured per channel; a channel missing has none."""

    kinds: Mapping[str, tuple[str, ...]]

    def per_channel(self) -> list[tuple[str, str]]:
        """(channel label, "kind, kind" or "none configured") for each channel."""
        return [
            (
                label,
                ", ".join(self.kinds[channel]) if self.kinds.get(channel) else "none configured",
            )
            for channel, label in CHANNELS
        ]

    def sentence(self) -> str:
        if not self.kinds:
            return (
                "no providers configured yet: production sends answer 503 "
                "channel_not_configured until an operator adds one (tidings providers add)"
            )
        return "; ".join(f"{label}: {kinds}" for label, kinds in self.per_channel())


async def production_providers(sessions: async_sessionmaker[AsyncSession]) -> ProductionProviders:
    query = (
        select(ProviderRow.channel, ProviderRow.kind)
        .where(
            ProviderRow.environment == "production",
            ProviderRow.enabled.is_(True),
            ProviderRow.deleted_at.is_(None),
        )
        .distinct()
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    found: dict[str, list[str]] = {}
    for channel, kind in rows:
        found.setdefault(channel, []).append(kind)
    return ProductionProviders({channel: tuple(sorted(kinds)) for channel, kinds in found.items()})
