"""``Idempotency-Key`` on creating POSTs (spec section 1, Stripe's model).

A key is scoped to the account, the environment and the endpoint (method and
path), and kept 24 hours. The key row is written in the same transaction as what
the request creates, so two concurrent requests with one key cannot both create:
the second fails on the key's primary key and replays the first. The answer is
stored once known; until then a replay is rebuilt from the created resource.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.errors import Conflict, FieldError, Unprocessable
from tidings.db.base import Base
from tidings.db.group_commit import GroupCommitter
from tidings.http.environment import get_route_path
from tidings.idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class KeyScope:
    account_id: str
    environment: str
    endpoint: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: dict[str, Any] | None
    resource_id: str | None


def body_hash(raw: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = raw.decode("utf-8", "replace")
    return hashlib.sha256(canonical.encode()).hexdigest()


async def scope_of(request: Request, account_id: str, environment: str) -> KeyScope | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Unprocessable(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
            errors=[FieldError(HEADER, "invalid", "Use a UUID or another unique string.")],
        )
    endpoint = f"{request.method} {get_route_path(request.scope)}"
    return KeyScope(account_id, environment, endpoint, key, body_hash(await request.body()))


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(self, scope: KeyScope, now: datetime) -> IdempotencyKey | None:
        """The key's row while it is kept (24 hours)."""
        row = await self._session.get(
            IdempotencyKey, (scope.account_id, scope.environment, scope.endpoint, scope.key)
        )
        if row is not None and row.created_at < now - RETENTION:
            return None
        return row

    async def taken(self, scope: KeyScope, now: datetime) -> StoredAnswer | None:
        """The earlier answer when the key is in use; an expired row is cleared so
        the key can be used again (call :meth:`add` next, in the same transaction)."""
        row = await self._session.get(
            IdempotencyKey, (scope.account_id, scope.environment, scope.endpoint, scope.key)
        )
        if row is None:
            return None
        if row.created_at >= now - RETENTION:
            return stored_answer(row, scope)
        await self._session.delete(row)
        await self._session.flush()
        return None

    def add(self, scope: KeyScope, resource_id: str, now: datetime) -> None:
        self._session.add(
            IdempotencyKey(
                account_id=scope.account_id,
                environment=scope.environment,
                endpoint=scope.endpoint,
                key=scope.key,
                request_hash=scope.request_hash,
                resource_id=resource_id,
                created_at=now,
            )
        )

    async def store_answer(self, scope: KeyScope, status: int, body: dict[str, Any]) -> None:
        await self._session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.account_id == scope.account_id,
                IdempotencyKey.environment == scope.environment,
                IdempotencyKey.endpoint == scope.endpoint,
                IdempotencyKey.key == scope.key,
            )
            .values(response_status=status, response_body=body)
        )

    async def purge(self, now: datetime, *, limit: int) -> tuple[int, bool]:
        """Delete keys past their 24 hours, the oldest first, about ``limit`` at a
        time (keys made in the same microsecond go together): how many it deleted,
        and whether older keys are left."""
        cutoff = now - RETENTION
        # The (limit+1)-th oldest expired key, found through the index on created_at.
        bound = await self._session.scalar(
            select(IdempotencyKey.created_at)
            .where(IdempotencyKey.created_at < cutoff)
            .order_by(IdempotencyKey.created_at)
            .offset(limit)
            .limit(1)
        )
        condition = (
            IdempotencyKey.created_at < cutoff
            if bound is None
            else IdempotencyKey.created_at <= bound
        )
        result = await self._session.execute(delete(IdempotencyKey).where(condition))
        return max(int(getattr(result, "rowcount", 0) or 0), 0), bound is not None


async def taken_answer(
    session: AsyncSession, scope: KeyScope | None, now: datetime
) -> StoredAnswer | None:
    """Inside a creating write: the earlier answer when the key is in use (replay
    it, create nothing); None when there is no key or it is free."""
    if scope is None:
        return None
    return await IdempotencyRepository(session).taken(scope, now)


def hold_key(
    session: AsyncSession, scope: KeyScope | None, resource_id: str, now: datetime
) -> None:
    """Inside the same write: the key now names the resource being created."""
    if scope is not None:
        IdempotencyRepository(session).add(scope, resource_id, now)


def stored_answer(row: IdempotencyKey, scope: KeyScope) -> StoredAnswer:
    if row.request_hash != scope.request_hash:
        raise Conflict(
            f"This {HEADER} was already used with a different request body; "
            "use a new key for a new request.",
            code="idempotency_key_reused",
        )
    return StoredAnswer(row.response_status or 200, row.response_body, row.resource_id)


async def previous_answer(
    session: AsyncSession, scope: KeyScope | None, now: datetime
) -> StoredAnswer | None:
    if scope is None:
        return None
    row = await IdempotencyRepository(session).find(scope, now)
    return None if row is None else stored_answer(row, scope)


async def reread_after_conflict(
    sessions: Callable[[], Any], scope: KeyScope, now: datetime
) -> StoredAnswer:
    """After losing the race on a key, the winner's answer."""
    async with sessions() as session:
        row = await IdempotencyRepository(session).find(scope, now)
    if row is None:
        raise Conflict(
            f"Another request with this {HEADER} is in progress; retry shortly.",
            code="idempotency_key_in_use",
        )
    return stored_answer(row, scope)


async def add_once(
    writer: GroupCommitter,
    sessions: Callable[[], Any],
    scope: KeyScope | None,
    now: datetime,
    row: Base,
    resource_id: str,
) -> StoredAnswer | None:
    """Store a new resource's ``row`` under the key, through the group committer:
    None once committed, or the earlier answer when the key was taken (by an
    earlier request, or by a concurrent one that won the race)."""

    async def write(session: AsyncSession) -> StoredAnswer | None:
        earlier = await taken_answer(session, scope, now)
        if earlier is not None:
            return earlier
        session.add(row)
        hold_key(session, scope, resource_id, now)
        return None

    try:
        return await writer.submit(write)
    except IntegrityError:
        if scope is None:
            raise
        return await reread_after_conflict(sessions, scope, now)
