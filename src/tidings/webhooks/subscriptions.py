"""Which event types an account's enabled webhook endpoints want, per environment.

The row paths of the status writer ask this before writing outbox events: an
event no endpoint subscribes to has nowhere to go, and at thousands of
messages a second writing it anyway would be most of the work. The question
is asked inside the transaction that writes the change, so an endpoint
enabled before that transaction gets the event. A caller that reads the
endpoints itself in that transaction (the scale-out verdict reads them with the
rows it locks, in the same statement) builds the answer with
:meth:`Subscriptions.of_endpoints`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.webhooks.fanout import matches
from tidings.webhooks.models import WebhookEndpoint

Scope = tuple[str, str]
_CACHE_KEY = "tidings.subscriptions"
# Asked at every status change: built once.
_ENABLED = select(
    WebhookEndpoint.account_id, WebhookEndpoint.environment, WebhookEndpoint.events
).where(
    WebhookEndpoint.account_id.in_(bindparam("accounts", expanding=True)), WebhookEndpoint.enabled
)


class Subscriptions:
    def __init__(self, patterns: dict[Scope, list[list[str]]]) -> None:
        self._patterns = patterns
        self._answers: dict[tuple[Scope, str], bool] = {}

    @classmethod
    async def load(cls, session: AsyncSession, scopes: Iterable[Scope]) -> Subscriptions:
        wanted = set(scopes)
        patterns: dict[Scope, list[list[str]]] = {}
        accounts = sorted({account for account, _ in wanted})
        if accounts:
            rows = await (await session.connection()).execute(_ENABLED, {"accounts": accounts})
            for account, environment, events in rows:
                if (account, environment) in wanted:
                    patterns.setdefault((account, environment), []).append(list(events or ["*"]))
        return cls(patterns)

    @classmethod
    def of_endpoints(
        cls, endpoints: Iterable[tuple[str, str, Sequence[str] | None]]
    ) -> Subscriptions:
        """From enabled endpoints read by the caller: ``(account, environment, events)``
        each, once per endpoint."""
        patterns: dict[Scope, list[list[str]]] = {}
        for account, environment, events in endpoints:
            patterns.setdefault((account, environment), []).append(list(events or ["*"]))
        return cls(patterns)

    @classmethod
    async def of_transaction(cls, session: AsyncSession, scope: Scope) -> Subscriptions:
        """The scope's subscriptions, read once per session (one group transaction
        holds many single sends of the same account)."""
        cache: dict[Scope, Subscriptions] = session.info.setdefault(_CACHE_KEY, {})
        found = cache.get(scope)
        if found is None:
            found = cache[scope] = await cls.load(session, [scope])
        return found

    def wants(self, scope: Scope, event_type: str) -> bool:
        key = (scope, event_type)
        answer = self._answers.get(key)
        if answer is None:
            answer = any(matches(p, event_type) for p in self._patterns.get(scope, []))
            self._answers[key] = answer
        return answer
