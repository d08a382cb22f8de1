"""The resealer of provider credentials for ``tidings secrets rotate``: each
provider's sealed secrets (name -> sealed value) moved to the key ring's current key.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts
from tidings.providers.models import ProviderRow

BATCH = 500


async def reseal_provider_secrets(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    counts = ResealCounts("provider secrets")
    after = ""
    while True:
        rows = (
            await session.execute(
                select(ProviderRow.id, ProviderRow.secrets, ProviderRow.updated_at)
                .where(ProviderRow.id > after)
                .order_by(ProviderRow.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return counts
        for provider_id, secrets, updated_at in rows:
            changed = False
            resealed = dict(secrets or {})
            for name, sealed in (secrets or {}).items():
                new = counts.reseal(ring, sealed, f"{provider_id} ({name})")
                if new is not None:
                    resealed[name], changed = new, True
            if not changed:
                continue
            # Compare-and-set on updated_at (left as it is: the plaintext did not
            # change, so nothing built from it needs rebuilding); an edit through the
            # API meanwhile wins.
            written = await session.execute(
                update(ProviderRow)
                .where(ProviderRow.id == provider_id, ProviderRow.updated_at == updated_at)
                .values(secrets=resealed)
                .execution_options(synchronize_session=False)
            )
            if not getattr(written, "rowcount", 0):
                counts.changed += 1
        after = rows[-1][0]
