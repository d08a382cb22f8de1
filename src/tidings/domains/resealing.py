"""The resealer of sending domains' DKIM private keys for ``tidings secrets rotate``:
each domain's sealed keys (``rsa``, ``ed25519``) moved to the key ring's current key,
compare-and-set on ``updated_at`` (left unchanged: the keys themselves did not
change), so a verification written meanwhile wins and the rotation is run again."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts
from tidings.domains.models import EmailDomain

BATCH = 500


async def reseal_domain_keys(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    counts = ResealCounts("sending domain keys")
    after = ""
    while True:
        rows = (
            await session.execute(
                select(EmailDomain.id, EmailDomain.secrets, EmailDomain.updated_at)
                .where(EmailDomain.id > after)
                .order_by(EmailDomain.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return counts
        for domain_id, secrets, updated_at in rows:
            resealed = dict(secrets or {})
            changed = False
            for name, sealed in (secrets or {}).items():
                new = counts.reseal(ring, sealed, f"{domain_id} ({name})")
                if new is not None:
                    resealed[name], changed = new, True
            if not changed:
                continue
            written = await session.execute(
                update(EmailDomain)
                .where(EmailDomain.id == domain_id, EmailDomain.updated_at == updated_at)
                .values(secrets=resealed)
                .execution_options(synchronize_session=False)
            )
            if not getattr(written, "rowcount", 0):
                counts.changed += 1
        after = rows[-1][0]
