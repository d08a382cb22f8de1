"""SQL for contacts and lists: the only module of the package that queries them.

Every query filters by account and environment. Pages are newest first by id
(ids sort by creation time) with ``limit + 1`` rows, as
:func:`tidings.core.pagination.next_cursor` expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import (
    Contact,
    ContactList,
    ListMember,
    OptOut,
    contacts_table,
    members_table,
)
from tidings.contacts.suppressions import Suppression
from tidings.core.environments import Environment

# Opt-out channels held in the opt_outs table; email's state is the suppression list.
PHONE_CHANNELS = ("sms", "whatsapp")
# Kept under both drivers' bound-parameter limits with room to spare.
IN_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class ContactFilters:
    search: str | None = None
    phone: str | None = None
    email: str | None = None
    list_id: str | None = None


def _like_term(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ContactRepository:
    def __init__(self, session: AsyncSession, account_id: str, environment: Environment) -> None:
        self._session = session
        self._account_id = account_id
        self._environment = environment.value

    def _mine(self) -> list[Any]:
        return [Contact.account_id == self._account_id, Contact.environment == self._environment]

    async def get(self, contact_id: str) -> Contact | None:
        found: Contact | None = await self._session.scalar(
            select(Contact).where(Contact.id == contact_id, *self._mine())
        )
        return found

    async def holder(
        self, phone: str | None, email: str | None, *, other_than: str | None = None
    ) -> Contact | None:
        """A contact (other than ``other_than``) that already has this phone or email."""
        keys = []
        if phone is not None:
            keys.append(Contact.phone == phone)
        if email is not None:
            keys.append(Contact.email == email)
        if not keys:
            return None
        query = select(Contact).where(*self._mine(), or_(*keys))
        if other_than is not None:
            query = query.where(Contact.id != other_than)
        found: Contact | None = await self._session.scalar(query.limit(1))
        return found

    async def holders(
        self, phones: Iterable[str], emails: Iterable[str]
    ) -> list[tuple[str, str | None, str | None, dict[str, str]]]:
        """(id, phone, email, variables) of the contacts with any of these keys, in
        one query per key kind and :data:`IN_CHUNK` keys."""
        table = contacts_table
        columns = (table.c.id, table.c.phone, table.c.email, table.c.variables)
        found: dict[str, tuple[str, str | None, str | None, dict[str, str]]] = {}
        for column, keys in (
            (table.c.phone, sorted(set(phones))),
            (table.c.email, sorted(set(emails))),
        ):
            for start in range(0, len(keys), IN_CHUNK):
                rows = await self._session.execute(
                    select(*columns).where(
                        table.c.account_id == self._account_id,
                        table.c.environment == self._environment,
                        column.in_(keys[start : start + IN_CHUNK]),
                    )
                )
                for row in rows:
                    found[row[0]] = (row[0], row[1], row[2], dict(row[3] or {}))
        return list(found.values())

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), IN_CHUNK):
            rows = await self._session.scalars(
                select(Contact.id).where(
                    *self._mine(), Contact.id.in_(ids[start : start + IN_CHUNK])
                )
            )
            found.update(rows)
        return found

    async def page(
        self, *, limit: int, after: str | None, filters: ContactFilters
    ) -> list[Contact]:
        query = select(Contact).where(*self._mine())
        if filters.phone is not None:
            query = query.where(Contact.phone == filters.phone)
        if filters.email is not None:
            query = query.where(Contact.email == filters.email)
        if filters.search:
            query = query.where(Contact.search_text.like(_like_term(filters.search), escape="\\"))
        if filters.list_id is not None:
            query = query.join(ListMember, ListMember.contact_id == Contact.id).where(
                ListMember.list_id == filters.list_id
            )
        if after is not None:
            query = query.where(Contact.id < after)
        rows = await self._session.scalars(query.order_by(Contact.id.desc()).limit(limit + 1))
        return list(rows)

    async def opt_out_state(self, contacts: Sequence[Contact]) -> dict[str, dict[str, bool]]:
        """Each contact's opt-out per channel, in two queries for the whole page."""
        phones = {c.phone for c in contacts if c.phone}
        emails = {c.email for c in contacts if c.email}
        opted: set[tuple[str, str]] = set()
        if phones:
            rows = await self._session.execute(
                select(OptOut.channel, OptOut.address).where(
                    OptOut.account_id == self._account_id,
                    OptOut.environment == self._environment,
                    OptOut.channel.in_(PHONE_CHANNELS),
                    OptOut.address.in_(sorted(phones)),
                )
            )
            opted = {(channel, address) for channel, address in rows}
        suppressed: set[str] = set()
        if emails:
            suppressed = set(
                await self._session.scalars(
                    select(Suppression.address).where(
                        Suppression.account_id == self._account_id,
                        Suppression.environment == self._environment,
                        Suppression.address.in_(sorted(emails)),
                    )
                )
            )
        return {
            c.id: {
                "sms": c.phone is not None and ("sms", c.phone) in opted,
                "whatsapp": c.phone is not None and ("whatsapp", c.phone) in opted,
                "email": c.email is not None and c.email in suppressed,
            }
            for c in contacts
        }

    async def delete(self, contact_id: str) -> bool:
        if await self.get(contact_id) is None:
            return False
        # Memberships go first: SQLite enforces the foreign key, and PostgreSQL's
        # cascade would do the same.
        await self._session.execute(delete(ListMember).where(ListMember.contact_id == contact_id))
        await self._session.execute(delete(Contact).where(Contact.id == contact_id, *self._mine()))
        return True


class ListRepository:
    def __init__(self, session: AsyncSession, account_id: str, environment: Environment) -> None:
        self._session = session
        self._account_id = account_id
        self._environment = environment.value

    def _mine(self) -> list[Any]:
        return [
            ContactList.account_id == self._account_id,
            ContactList.environment == self._environment,
        ]

    async def get(self, list_id: str) -> ContactList | None:
        found: ContactList | None = await self._session.scalar(
            select(ContactList).where(ContactList.id == list_id, *self._mine())
        )
        return found

    async def page(self, *, limit: int, after: str | None) -> list[ContactList]:
        query = select(ContactList).where(*self._mine())
        if after is not None:
            query = query.where(ContactList.id < after)
        rows = await self._session.scalars(query.order_by(ContactList.id.desc()).limit(limit + 1))
        return list(rows)

    async def counts(self, list_ids: Sequence[str]) -> dict[str, int]:
        """Members per list, one grouped query (the lists are already known to be
        this tenant's)."""
        if not list_ids:
            return {}
        rows = await self._session.execute(
            select(ListMember.list_id, func.count())
            .where(ListMember.list_id.in_(list_ids))
            .group_by(ListMember.list_id)
        )
        counted = {list_id: int(count) for list_id, count in rows}
        return {list_id: counted.get(list_id, 0) for list_id in list_ids}

    async def delete(self, list_id: str) -> bool:
        if await self.get(list_id) is None:
            return False
        await self._session.execute(delete(ListMember).where(ListMember.list_id == list_id))
        await self._session.execute(
            delete(ContactList).where(ContactList.id == list_id, *self._mine())
        )
        return True

    async def members_of(self, list_id: str, contact_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(contact_ids), IN_CHUNK):
            rows = await self._session.scalars(
                select(ListMember.contact_id).where(
                    ListMember.list_id == list_id,
                    ListMember.contact_id.in_(contact_ids[start : start + IN_CHUNK]),
                )
            )
            found.update(rows)
        return found

    async def add_members(self, list_id: str, contact_ids: Sequence[str], at: datetime) -> int:
        """Adds the contacts (all this tenant's, checked by the caller) that are not
        members yet; the number added. ``ON CONFLICT DO NOTHING`` covers another
        process adding the same member meanwhile."""
        present = await self.members_of(list_id, contact_ids)
        fresh = [cid for cid in dict.fromkeys(contact_ids) if cid not in present]
        if not fresh:
            return 0
        dialect = self._session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(members_table).on_conflict_do_nothing()
        await self._session.execute(
            statement, [{"list_id": list_id, "contact_id": cid, "created_at": at} for cid in fresh]
        )
        return len(fresh)

    async def remove_member(self, list_id: str, contact_id: str) -> bool:
        result = await self._session.execute(
            delete(ListMember).where(
                ListMember.list_id == list_id, ListMember.contact_id == contact_id
            )
        )
        return bool(getattr(result, "rowcount", 0))
