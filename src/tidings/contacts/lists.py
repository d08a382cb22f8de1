"""Lists' members: adding them (by id, or found or created by phone and email)
and reading them all at once for a bulk send (:func:`list_recipients`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.fields import Rejection
from tidings.contacts.models import ContactList, contacts_table, members_table
from tidings.contacts.repository import ContactRepository, ListRepository
from tidings.contacts.upsert import ContactInput, Upserted, upsert_contacts
from tidings.core.environments import Environment
from tidings.core.errors import NotFound

__all__ = [
    "Additions",
    "ListRecipient",
    "add_members",
    "list_not_found",
    "list_recipients",
]


@dataclass(frozen=True, slots=True)
class ListRecipient:
    contact_id: str
    phone: str | None
    email: str | None
    variables: dict[str, str]


def list_not_found(list_id: str) -> NotFound:
    return NotFound(
        f"There is no list {list_id!r} in this account and environment.", code="list_not_found"
    )


async def list_recipients(
    session: AsyncSession, *, account_id: str, environment: str, list_id: str
) -> list[ListRecipient]:
    """Every member of the list, oldest contact first; ``NotFound``
    (``list_not_found``) when the list is not this account's in this environment."""
    env = Environment(environment).value
    found = await session.scalar(
        select(ContactList.id).where(
            ContactList.id == list_id,
            ContactList.account_id == account_id,
            ContactList.environment == env,
        )
    )
    if found is None:
        raise list_not_found(list_id)
    contacts = contacts_table
    members = members_table
    # Core rows, not ORM objects: 100,000 members load in a fraction of a second.
    rows = await session.execute(
        select(contacts.c.id, contacts.c.phone, contacts.c.email, contacts.c.variables)
        .select_from(members.join(contacts, contacts.c.id == members.c.contact_id))
        .where(
            members.c.list_id == list_id,
            contacts.c.account_id == account_id,
            contacts.c.environment == env,
        )
        .order_by(contacts.c.id)
    )
    return [
        ListRecipient(contact_id=cid, phone=phone, email=email, variables=dict(variables or {}))
        for cid, phone, email, variables in rows
    ]


@dataclass(slots=True)
class Additions:
    added: int = 0
    already_member: int = 0
    created: int = 0
    rejected: list[tuple[str, Rejection]] | None = None


async def add_members(
    session: AsyncSession,
    *,
    account_id: str,
    environment: Environment,
    list_id: str,
    contact_ids: Sequence[str],
    contacts: Sequence[tuple[int, ContactInput | Rejection]],
    at: datetime,
) -> Additions:
    """A write unit: existing contacts by id, and contacts found or created from
    ``(index, validated entry)`` pairs, become members of the list."""
    lists = ListRepository(session, account_id, environment)
    if await lists.get(list_id) is None:
        raise list_not_found(list_id)
    # (which list, index) orders the answer's errors as the request gave the entries.
    rejected: list[tuple[tuple[int, int], str, Rejection]] = []
    known = await ContactRepository(session, account_id, environment).existing_ids(
        list(dict.fromkeys(contact_ids))
    )
    wanted: list[str] = []
    for index, contact_id in enumerate(contact_ids):
        if contact_id in known:
            wanted.append(contact_id)
        else:
            missing = Rejection(
                "contactIds", "contact_not_found", f"There is no contact {contact_id!r}."
            )
            rejected.append(((0, index), f"contactIds[{index}]", missing))
    valid = [(index, entry) for index, entry in contacts if isinstance(entry, ContactInput)]
    for index, entry in contacts:
        if isinstance(entry, Rejection):
            rejected.append(((1, index), f"contacts[{index}].{entry.field}", entry))
    outcomes = await upsert_contacts(
        session,
        account_id=account_id,
        environment=environment,
        rows=[entry for _, entry in valid],
        at=at,
    )
    created = 0
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, Upserted):
            wanted.append(outcome.contact_id)
            created += outcome.outcome == "created"
        else:
            rejected.append(((1, index), f"contacts[{index}].{outcome.field}", outcome))
    added = await lists.add_members(list_id, wanted, at)
    rejected.sort(key=lambda item: item[0])
    return Additions(
        added=added,
        already_member=len(wanted) - added,
        created=created,
        rejected=[(field, rejection) for _, field, rejection in rejected],
    )
