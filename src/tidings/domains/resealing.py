"""The resealer of sending domains' DKIM private keys for ``tidings secrets rotate``:
each domain's sealed keys (``rsa``, ``ed25519``) moved to the key ring's current key,
compare-and-set on ``updated_at``, so a verification written meanwhile wins and the
rotation is run again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts, reseal_named_secrets
from tidings.domains.models import EmailDomain


async def reseal_domain_keys(session: AsyncSession, ring: KeyRing) -> ResealCounts:
    return await reseal_named_secrets(session, ring, EmailDomain, "sending domain keys")
