"""The resealer of provider credentials for ``tidings secrets rotate``: each
provider's sealed secrets (name -> sealed value) moved to the key ring's current key.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts, reseal_named_secrets
from tidings.providers.models import ProviderRow


async def reseal_provider_secrets(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    return await reseal_named_secrets(session, ring, ProviderRow, "provider secrets")
