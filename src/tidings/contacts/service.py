"""Use cases of contacts and lists: validate, then write through the group-commit
writer (one unit per request), answering 404 / 409 / 422 from the error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.csv_import import CsvImport, ImportReport
from tidings.contacts.fields import (
    Rejection,
    check_email,
    check_phone,
    check_variables,
    search_text,
    unprocessable,
)
from tidings.contacts.lists import list_not_found
from tidings.contacts.models import Contact, ContactList
from tidings.contacts.repository import ContactRepository, ListRepository
from tidings.contacts.schemas import ContactUpdate, ListCreate, ListUpdate
from tidings.contacts.upsert import ContactInput, Upserted, upsert_contacts
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import Conflict, FieldError, NotFound, Unprocessable
from tidings.core.ids import new_id
from tidings.idempotency.service import (
    KeyScope,
    StoredAnswer,
    add_once,
    hold_key,
    previous_answer,
    taken_answer,
)


async def test_numbers(
    ctx: AppContext, account_id: str, environment: Environment
) -> frozenset[str]:
    """Numbers outside the numbering plan that this environment's phone providers
    accept (the sandbox's magic numbers), so that contacts can hold them too."""
    numbers: frozenset[str] = frozenset()
    for channel in ("sms", "whatsapp"):
        provider = await ctx.runtime.providers.find(account_id, environment, channel)
        if provider is not None:
            numbers |= provider.test_numbers
    return numbers


def contact_input(
    phone: str | None,
    email: str | None,
    variables: dict[str, str],
    extra_valid: frozenset[str],
) -> ContactInput | Rejection:
    """A validated contact, or why not."""
    checked_phone = None if phone is None else check_phone(phone, extra_valid)
    if isinstance(checked_phone, Rejection):
        return checked_phone
    checked_email = None if email is None else check_email(email)
    if isinstance(checked_email, Rejection):
        return checked_email
    if checked_phone is None and checked_email is None:
        return Rejection("phone", "phone_or_email_required", "A contact needs a phone or an email.")
    checked = check_variables(variables)
    if isinstance(checked, Rejection):
        return checked
    return ContactInput(checked_phone, checked_email, checked)


def contact_exists(holder: Contact, phone: str | None, email: str | None) -> Conflict:
    key = "phone" if phone is not None and holder.phone == phone else "email"
    value = phone if key == "phone" else email
    return Conflict(
        f"Contact {holder.id} already has the {key} {value}; update that contact instead.",
        code="contact_exists",
        errors=[FieldError(key, "contact_exists", f"Used by contact {holder.id}.")],
        extra={"contactId": holder.id},
    )


async def _after_integrity_error(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    entry: ContactInput,
    scope: KeyScope | None,
) -> StoredAnswer:
    """Another process won a race: its answer for this key, or a 409 naming the
    contact it created."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        earlier = await previous_answer(session, scope, now)
        if earlier is not None:
            return earlier
        holder = await ContactRepository(session, account_id, environment).holder(
            entry.phone, entry.email
        )
    if holder is not None:
        raise contact_exists(holder, entry.phone, entry.email)
    raise Conflict(
        "Another request changed this contact at the same moment; retry.", code="conflict"
    )


async def create_contact(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    entry: ContactInput,
    scope: KeyScope | None,
) -> Contact | StoredAnswer:
    now = ctx.clock.now()
    contact = Contact(
        id=new_id("con"),
        account_id=account_id,
        environment=environment.value,
        phone=entry.phone,
        email=entry.email,
        variables=entry.variables,
        search_text=search_text(entry.phone, entry.email, entry.variables),
        created_at=now,
        updated_at=now,
    )

    async def write(session: AsyncSession) -> StoredAnswer | None:
        earlier = await taken_answer(session, scope, now)
        if earlier is not None:
            return earlier
        holder = await ContactRepository(session, account_id, environment).holder(
            entry.phone, entry.email
        )
        if holder is not None:
            raise contact_exists(holder, entry.phone, entry.email)
        session.add(contact)
        hold_key(session, scope, contact.id, now)
        return None

    try:
        earlier = await ctx.runtime.writer.submit(write)
    except IntegrityError:
        return await _after_integrity_error(ctx, account_id, environment, entry, scope)
    return earlier if earlier is not None else contact


async def update_contact(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    contact_id: str,
    body: ContactUpdate,
) -> Contact:
    """Only the fields given change; ``variables`` is merged, a null value removing
    that variable; a null phone or email removes it (one of them must remain)."""
    given = body.model_fields_set
    extra_valid = await test_numbers(ctx, account_id, environment)
    phone = body.phone
    if "phone" in given and phone is not None:
        checked = check_phone(phone, extra_valid)
        if isinstance(checked, Rejection):
            raise unprocessable(checked)
        phone = checked
    email = body.email
    if "email" in given and email is not None:
        checked = check_email(email)
        if isinstance(checked, Rejection):
            raise unprocessable(checked)
        email = checked
    now = ctx.clock.now()

    async def write(session: AsyncSession) -> Contact:
        contacts = ContactRepository(session, account_id, environment)
        contact = await contacts.get(contact_id)
        if contact is None:
            raise contact_not_found(contact_id)
        new_phone = phone if "phone" in given else contact.phone
        new_email = email if "email" in given else contact.email
        if new_phone is None and new_email is None:
            raise unprocessable(
                Rejection(
                    "phone", "phone_or_email_required", "A contact needs a phone or an email."
                )
            )
        variables = dict(contact.variables or {})
        for name, value in (body.variables or {}).items():
            if value is None:
                variables.pop(name, None)
            else:
                variables[name] = value
        checked = check_variables(variables)
        if isinstance(checked, Rejection):
            raise unprocessable(checked)
        holder = await contacts.holder(
            new_phone if new_phone != contact.phone else None,
            new_email if new_email != contact.email else None,
            other_than=contact.id,
        )
        if holder is not None:
            raise contact_exists(holder, new_phone, new_email)
        contact.phone, contact.email, contact.variables = new_phone, new_email, checked
        contact.search_text = search_text(new_phone, new_email, checked)
        contact.updated_at = now
        return contact

    try:
        return await ctx.runtime.writer.submit(write)
    except IntegrityError:
        raise Conflict(
            "Another contact took this phone or email at the same moment; retry.",
            code="contact_exists",
        ) from None


def contact_not_found(contact_id: str) -> NotFound:
    return NotFound(
        f"There is no contact {contact_id!r} in this account and environment.",
        code="contact_not_found",
    )


def contact_not_member(contact_id: str, list_id: str) -> NotFound:
    return NotFound(f"Contact {contact_id!r} is not on list {list_id!r}.", code="not_a_member")


async def delete_contact(
    ctx: AppContext, account_id: str, environment: Environment, contact_id: str
) -> None:
    async def write(session: AsyncSession) -> bool:
        return await ContactRepository(session, account_id, environment).delete(contact_id)

    if not await ctx.runtime.writer.submit(write):
        raise contact_not_found(contact_id)


async def create_list(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    body: ListCreate,
    scope: KeyScope | None,
) -> ContactList | StoredAnswer:
    now = ctx.clock.now()
    row = ContactList(
        id=new_id("lst"),
        account_id=account_id,
        environment=environment.value,
        name=body.name,
        description=body.description,
        created_at=now,
        updated_at=now,
    )

    earlier = await add_once(ctx.runtime.writer, ctx.sessions, scope, now, row, row.id)
    return earlier if earlier is not None else row


async def update_list(
    ctx: AppContext, account_id: str, environment: Environment, list_id: str, body: ListUpdate
) -> ContactList:
    given = body.model_fields_set
    if "name" in given and body.name is None:
        raise Unprocessable(
            "A list's name cannot be removed.",
            errors=[FieldError("name", "required", "Give a name of 1 to 200 characters.")],
        )
    now = ctx.clock.now()

    async def write(session: AsyncSession) -> ContactList:
        row = await ListRepository(session, account_id, environment).get(list_id)
        if row is None:
            raise list_not_found(list_id)
        changes: dict[str, Any] = {name: getattr(body, name) for name in given}
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = now
        return row

    return await ctx.runtime.writer.submit(write)


async def delete_list(
    ctx: AppContext, account_id: str, environment: Environment, list_id: str
) -> None:
    async def write(session: AsyncSession) -> bool:
        return await ListRepository(session, account_id, environment).delete(list_id)

    if not await ctx.runtime.writer.submit(write):
        raise list_not_found(list_id)


async def import_csv(
    ctx: AppContext,
    account_id: str,
    environment: Environment,
    source: AsyncIterator[bytes],
    list_id: str | None = None,
) -> ImportReport:
    """Import a CSV file's bytes (``POST /api/v4/contacts/import`` and the console's
    upload): contacts created or updated in chunks, each chunk one unit of the writer;
    with ``list_id`` (404 if it is not this account's), every accepted row joins it."""
    if list_id is not None:
        async with ctx.sessions() as session:
            if await ListRepository(session, account_id, environment).get(list_id) is None:
                raise list_not_found(list_id)

    async def write(rows: list[ContactInput]) -> list[Upserted | Rejection]:
        async def unit(session: AsyncSession) -> list[Upserted | Rejection]:
            now = ctx.clock.now()
            lists = ListRepository(session, account_id, environment)
            if list_id is not None and await lists.get(list_id) is None:
                raise list_not_found(list_id)
            outcomes = await upsert_contacts(
                session, account_id=account_id, environment=environment, rows=rows, at=now
            )
            if list_id is not None:
                joined = [o.contact_id for o in outcomes if isinstance(o, Upserted)]
                await lists.add_members(list_id, joined, now)
            return outcomes

        try:
            return await ctx.runtime.writer.submit(unit)
        except IntegrityError:
            # Another process wrote one of these contacts meanwhile: read again.
            return await ctx.runtime.writer.submit(unit)

    importer = CsvImport(
        write=write,
        extra_valid=await test_numbers(ctx, account_id, environment),
        max_rows=ctx.settings.import_max_rows,
        errors_listed=ctx.settings.bulk.errors_listed,
    )
    return await importer.run(source)
