"""Each account's default phone country, read from the database and kept briefly.

Asked on every request that carries a token (see
:mod:`tidings.channels.phone_reading`), so answers are cached per process for
``ttl_seconds``: a change made with ``tidings accounts set-country`` reaches every
process within that time. When an answer runs out under load, the requests in flight
share one read (:class:`tidings.core.single_flight.SingleFlight`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.accounts.models import Account
from tidings.core.single_flight import SingleFlight

_MAX_ENTRIES = 10_000


class AccountCountries:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, str | None]] = {}
        self._reading: SingleFlight[str, str | None] = SingleFlight()

    async def country(self, account_id: str) -> str | None:
        now = self._monotonic()
        cached = self._known.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        return await self._reading.run(account_id, lambda: self._read(account_id, now))

    async def _read(self, account_id: str, now: float) -> str | None:
        async with self._sessions() as session:
            found = await session.scalar(
                select(Account.phone_default_country).where(Account.id == account_id)
            )
        if len(self._known) >= _MAX_ENTRIES:
            self._known.clear()  # bounded: a burst of accounts costs a re-read, not memory
        self._known[account_id] = (now + self._ttl, found)
        return found
