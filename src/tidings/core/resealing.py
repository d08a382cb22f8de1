"""The shape of one resealer of ``tidings secrets rotate``: what it counted, and the
helper that reseals one stored value.

A resealer is ``async (session, ring) -> ResealCounts``: it finds the sealed values
of one kind of row, reseals each with the ring's current key and writes it back.
A value that cannot be opened is counted and named (row id and reason, never the
value) and left as it is, so restoring the lost key can still recover it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.key_ring import KeyRing, SecretUnavailable


@dataclass
class ResealCounts:
    what: str
    resealed: int = 0
    current: int = 0
    # Written by someone else between our read and our write: run the rotation again.
    changed: int = 0
    unavailable: list[str] = field(default_factory=list)

    def summary(self) -> str:
        line = f"{self.what}: {self.resealed} resealed, {self.current} already current"
        if self.changed:
            line += f", {self.changed} changed meanwhile (run again)"
        return f"{line}, {len(self.unavailable)} cannot be opened"

    def reseal(self, ring: KeyRing, stored: str, label: str) -> str | None:
        """``stored`` sealed with the current key, or None when nothing is to be written
        (already current, or it cannot be opened: then it is counted under ``label``)."""
        try:
            sealed = ring.reseal(stored)
        except SecretUnavailable as error:
            self.unavailable.append(f"{label}: {error.reason}")
            return None
        if sealed is None:
            self.current += 1
        else:
            self.resealed += 1
        return sealed


Resealer = Callable[[AsyncSession, KeyRing], Awaitable[ResealCounts]]


BATCH = 500


async def reseal_named_secrets(
    session: AsyncSession, ring: KeyRing, model: Any, what: str
) -> ResealCounts:
    """Reseal a table whose rows keep their secrets as ``secrets`` (name -> sealed
    value), with ``id`` and ``updated_at`` columns (providers, sending domains).

    Each row is written compare-and-set on ``updated_at``, left as it is (the
    plaintext did not change, so nothing built from it needs rebuilding): an edit
    made meanwhile wins, and is counted as changed (run the rotation again)."""
    counts = ResealCounts(what)
    after = ""
    while True:
        rows = (
            await session.execute(
                select(model.id, model.secrets, model.updated_at)
                .where(model.id > after)
                .order_by(model.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return counts
        for row_id, secrets, updated_at in rows:
            resealed = dict(secrets or {})
            changed = False
            for name, sealed in (secrets or {}).items():
                new = counts.reseal(ring, sealed, f"{row_id} ({name})")
                if new is not None:
                    resealed[name], changed = new, True
            if not changed:
                continue
            written = await session.execute(
                update(model)
                .where(model.id == row_id, model.updated_at == updated_at)
                .values(secrets=resealed)
                .execution_options(synchronize_session=False)
            )
            if not getattr(written, "rowcount", 0):
                counts.changed += 1
        after = rows[-1][0]
