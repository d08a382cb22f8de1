"""``tidings secrets rotate``: every resealer, composed in one place.

Each entry of :data:`RESEALERS` reseals one kind of sealed value with the key
ring's current key (:mod:`tidings.core.resealing` says what a resealer is); a
table that keeps sealed values adds its resealer here, one line. Each runs in its
own transaction, so one that fails leaves the others' work committed; running the
rotation again is harmless (values already current are counted, not rewritten).
"""

from __future__ import annotations

from tidings.core.key_ring import KeyRing
from tidings.core.resealing import ResealCounts, Resealer
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.domains.resealing import reseal_domain_keys
from tidings.providers.resealing import reseal_provider_secrets
from tidings.settings import Settings
from tidings.webhooks.resealing import reseal_endpoint_secrets, reseal_stored_answers

RESEALERS: tuple[Resealer, ...] = (
    reseal_endpoint_secrets,
    reseal_stored_answers,
    reseal_provider_secrets,
    reseal_domain_keys,
)


async def rotate(settings: Settings, ring: KeyRing) -> list[ResealCounts]:
    engine = build_engine(settings)
    try:
        sessions = build_sessionmaker(engine)
        reports = []
        for resealer in RESEALERS:
            async with sessions() as session:
                reports.append(await resealer(session, ring))
                await session.commit()
        return reports
    finally:
        await engine.dispose()
