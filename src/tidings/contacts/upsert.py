"""Create-or-update of many contacts at once: the CSV import and list additions.

A row whose phone or email belongs to an existing contact updates that contact:
its variables are merged in (the row's values win), and a phone or email the
row gives that the contact lacks or has differently replaces it. Other rows
create contacts. A row whose phone is one contact's and email another's is
rejected (``conflicting_contacts``): it cannot say which one it means. Rows of
one call see each other, so a file that names a person twice makes one contact.

One call runs inside a write unit (:meth:`GroupCommitter.submit`): two reads
(holders by phone and by email), then multi-row writes (:mod:`tidings.db.multirow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.fields import Rejection, search_text
from tidings.contacts.models import contacts_table
from tidings.contacts.repository import ContactRepository
from tidings.core.environments import Environment
from tidings.core.ids import new_ids
from tidings.db.multirow import insert_rows, update_rows


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A validated row: at least one of phone (E.164) and email (lower-cased)."""

    phone: str | None
    email: str | None
    variables: dict[str, str]


@dataclass(frozen=True, slots=True)
class Upserted:
    contact_id: str
    outcome: Literal["created", "updated"]


@dataclass(slots=True)
class _Record:
    id: str | None
    phone: str | None
    email: str | None
    variables: dict[str, str]
    original: tuple[str | None, str | None] = (None, None)
    dirty: bool = False
    new: bool = False


async def upsert_contacts(
    session: AsyncSession,
    *,
    account_id: str,
    environment: Environment,
    rows: Sequence[ContactInput],
    at: datetime,
) -> list[Upserted | Rejection]:
    """One outcome per row, in order."""
    repo = ContactRepository(session, account_id, environment)
    existing = await repo.holders(
        (r.phone for r in rows if r.phone), (r.email for r in rows if r.email)
    )
    by_phone: dict[str, _Record] = {}
    by_email: dict[str, _Record] = {}
    for contact_id, phone, email, variables in existing:
        record = _Record(contact_id, phone, email, variables, original=(phone, email))
        if phone:
            by_phone[phone] = record
        if email:
            by_email[email] = record

    outcomes: list[tuple[_Record, Literal["created", "updated"]] | Rejection] = []
    created: list[_Record] = []
    changed: list[_Record] = []
    for row in rows:
        on_phone = by_phone.get(row.phone) if row.phone else None
        on_email = by_email.get(row.email) if row.email else None
        if on_phone is not None and on_email is not None and on_phone is not on_email:
            outcomes.append(
                Rejection(
                    "email",
                    "conflicting_contacts",
                    f"Phone {row.phone} and email {row.email} belong to two different "
                    "contacts; give one of them, or change those contacts first.",
                )
            )
            continue
        target = on_phone or on_email
        if target is None:
            target = _Record(None, row.phone, row.email, dict(row.variables), new=True)
            created.append(target)
            outcomes.append((target, "created"))
        else:
            _merge(target, row, by_phone, by_email)
            if not target.new and not target.dirty:
                target.dirty = True
                changed.append(target)
            outcomes.append((target, "updated"))
        if target.phone:
            by_phone[target.phone] = target
        if target.email:
            by_email[target.email] = target

    for record, contact_id in zip(created, new_ids("con", len(created)), strict=True):
        record.id = contact_id
    await _write_updates(session, changed, at)
    await insert_rows(
        session,
        contacts_table,
        ("id", "phone", "email", "variables", "search_text"),
        (
            (r.id, r.phone, r.email, r.variables, search_text(r.phone, r.email, r.variables))
            for r in created
        ),
        shared={
            "account_id": account_id,
            "environment": environment.value,
            "created_at": at,
            "updated_at": at,
        },
    )
    answers: list[Upserted | Rejection] = []
    for outcome in outcomes:
        if isinstance(outcome, Rejection):
            answers.append(outcome)
        else:
            record, kind = outcome
            assert record.id is not None
            answers.append(Upserted(record.id, kind))
    return answers


def _merge(
    target: _Record, row: ContactInput, by_phone: dict[str, _Record], by_email: dict[str, _Record]
) -> None:
    target.variables.update(row.variables)
    if row.phone and target.phone != row.phone:
        if target.phone:
            by_phone.pop(target.phone, None)
        target.phone = row.phone
    if row.email and target.email != row.email:
        if target.email:
            by_email.pop(target.email, None)
        target.email = row.email


async def _write_updates(session: AsyncSession, changed: list[_Record], at: datetime) -> None:
    if not changed:
        return
    moved = [r for r in changed if (r.phone, r.email) != r.original]
    if moved:
        # A phone or email may pass from one contact to another within a call; clear
        # the moved keys first so no intermediate state breaks the unique constraints.
        await update_rows(
            session, contacts_table, ("phone", "email"), ((None, None, r.id) for r in moved)
        )
    await update_rows(
        session,
        contacts_table,
        ("phone", "email", "variables", "search_text", "updated_at"),
        (
            (r.phone, r.email, r.variables, search_text(r.phone, r.email, r.variables), at, r.id)
            for r in changed
        ),
    )
