"""Content a batch's messages share, stored once and put back when they are sent.

A bulk email's attachments (and its text or HTML when no variable changes them)
are the same for every recipient: copied into each message row, one 1 MB PDF to
100,000 recipients would be 130 GB. They are stored once per batch in
``shared_contents`` (:class:`~tidings.bulk.models.SharedContent`), and each
message's content names that row under ``"shared"``; what differs per recipient
(the addresses, the subject, the tracking tokens) stays on the message.

:func:`resolve_rows` puts the shared part back into leased rows before they go
to a provider, so a provider sees the content exactly as a single send stores
it. A shared content never changes once its batch is accepted, so each process
keeps the last few it read (:class:`SharedContents`) and reads one row per batch,
not per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.models import SharedContent
from tidings.channels.email.stored import SHARED_REFERENCE
from tidings.core.ids import new_id

SHARED_KEY = SHARED_REFERENCE

# Enough for the batches a dispatcher drains at once; the content of one email
# is at most a few tens of MB (attachments, text, HTML), so the cache stays small.
CACHE_ENTRIES = 8


@dataclass(frozen=True, slots=True)
class Shared:
    """A batch's shared content before it is stored."""

    id: str
    content: dict[str, Any]


def new_shared(content: dict[str, Any]) -> Shared:
    # A ULID like every id here, under its own prefix (the batch's is not known yet).
    return Shared("shc_" + new_id("bat").partition("_")[2], content)


def split(content: dict[str, Any], shared: Mapping[str, Any], shared_id: str) -> dict[str, Any]:
    """A message's own content: ``content`` without the keys ``shared`` holds (equal
    values, by construction of the caller), naming the shared content instead."""
    own = {key: value for key, value in content.items() if key not in shared}
    own[SHARED_KEY] = shared_id
    return own


def merge(own: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, Any]:
    """The message's whole content, as it would have been stored without sharing."""
    whole = {key: value for key, value in own.items() if key != SHARED_KEY}
    whole.update(shared)
    return whole


class SharedContents:
    """Shared contents by id, read from the database once and then kept (they are
    immutable): the most recently used :data:`CACHE_ENTRIES`."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._kept: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.reads = 0

    async def get_many(self, session: AsyncSession, ids: set[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for shared_id in ids:
            if (kept := self._kept.get(shared_id)) is not None:
                self._kept.move_to_end(shared_id)
                found[shared_id] = kept
        missing = ids - found.keys()
        if missing:
            self.reads += 1
            connection = await session.connection()
            rows = await connection.execute(
                select(SharedContent.id, SharedContent.content).where(
                    SharedContent.id.in_(sorted(missing))
                )
            )
            for shared_id, content in rows:
                found[shared_id] = content
                self._kept[shared_id] = content
            while len(self._kept) > self._entries:
                self._kept.popitem(last=False)
        return found

    async def resolve_rows(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Replace each row's ``content`` that names a shared content by the whole
        content. A reference whose row is gone (its batch was deleted) is left as
        it is: rendering then refuses it rather than send a message without its
        attachments."""
        wanted = {
            ref
            for row in rows
            if isinstance(content := row.get("content"), dict)
            and isinstance(ref := content.get(SHARED_KEY), str)
        }
        if not wanted:
            return
        found = await self.get_many(session, wanted)
        for row in rows:
            content = row.get("content")
            if isinstance(content, dict) and (shared := found.get(str(content.get(SHARED_KEY)))):
                row["content"] = merge(content, shared)


async def resolve_rows(
    session: AsyncSession, rows: Sequence[dict[str, Any]], cache: SharedContents | None = None
) -> None:
    """:meth:`SharedContents.resolve_rows`, without a cache when none is given."""
    await (cache or SharedContents()).resolve_rows(session, rows)
