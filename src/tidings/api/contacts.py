"""Contacts: ``/api/v4/contacts`` (create, read, update, delete, list) and
``POST /api/v4/contacts/import`` (CSV) (spec section 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.creating import create_once
from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.contacts import service
from tidings.contacts.fields import Rejection, check_email, check_phone, unprocessable
from tidings.contacts.lists import list_not_found
from tidings.contacts.models import Contact
from tidings.contacts.multipart import boundary_of, file_field
from tidings.contacts.repository import ContactFilters, ContactRepository, ListRepository
from tidings.contacts.schemas import (
    ContactCreate,
    ContactOut,
    ContactUpdate,
    ImportAnswer,
    contact_out,
)
from tidings.core.errors import UnsupportedMediaType
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses

router = APIRouter(prefix="/api/v4/contacts", tags=["Contacts"])

ContactId = Annotated[
    str,
    Path(max_length=64, description="A contact id.", examples=["con_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
]
ListIdQuery = Annotated[
    str | None,
    Query(
        alias="listId",
        max_length=64,
        description="Only members of this list.",
        examples=["lst_01JDQ3W6V2X4N8ZB7YH5K9T0RM"],
    ),
]

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The CSV file: the body itself (text/csv), or the `file` field "
        "of a form upload.",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "phone,email,name\n+393331234567,ada@example.com,Ada\n",
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


async def page_out(
    session: AsyncSession, principal: PrincipalDep, rows: list[Contact], limit: int
) -> Page[ContactOut]:
    shown, cursor = next_cursor(rows, limit)
    states = await ContactRepository(
        session, principal.account_id, principal.environment
    ).opt_out_state(shown)
    return Page[ContactOut](
        data=[contact_out(row, states[row.id]) for row in shown], next_cursor=cursor
    )


async def one_out(ctx: ContextDep, principal: PrincipalDep, contact: Contact) -> ContactOut:
    async with ctx.sessions() as session:
        repo = ContactRepository(session, principal.account_id, principal.environment)
        states = await repo.opt_out_state([contact])
    return contact_out(contact, states[contact.id])


@router.post(
    "",
    status_code=201,
    response_model=ContactOut,
    summary="Create a contact",
    responses=problem_responses(*AUTHENTICATED, 409),
)
async def create_contact(
    body: ContactCreate, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> JSONResponse:
    """A phone (E.164), an email, or both, and variables for bulk placeholders. A
    phone or email another contact has answers 409 ``contact_exists`` with that
    contact's id in ``contactId``. Emails are stored lower-cased."""
    extra_valid = await service.test_numbers(ctx, principal.account_id, principal.environment)
    entry = service.contact_input(body.phone, body.email, body.variables, extra_valid)
    if isinstance(entry, Rejection):
        raise unprocessable(entry)

    async def show(contact: Contact) -> dict[str, Any]:
        return (await one_out(ctx, principal, contact)).model_dump(mode="json", by_alias=True)

    async def reload(contact_id: str) -> Contact:
        async with ctx.sessions() as session:
            repo = ContactRepository(session, principal.account_id, principal.environment)
            made = await repo.get(contact_id)
        if made is None:
            raise service.contact_not_found(contact_id)
        return made

    return await create_once(
        ctx,
        request,
        principal,
        create=lambda scope: service.create_contact(
            ctx, principal.account_id, principal.environment, entry, scope
        ),
        show=show,
        reload=reload,
    )


@router.get(
    "",
    response_model=Page[ContactOut],
    summary="List contacts",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def list_contacts(
    principal: PrincipalDep,
    ctx: ContextDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    search: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Case-insensitive; part of the phone, the email or a variable value.",
            examples=["ada"],
        ),
    ] = None,
    phone: Annotated[str | None, Query(max_length=64, examples=["+393331234567"])] = None,
    email: Annotated[str | None, Query(max_length=400, examples=["ada@example.com"])] = None,
    list_id: ListIdQuery = None,
) -> Page[ContactOut]:
    """Newest first."""
    account, environment = principal.account_id, principal.environment
    if phone is not None:
        checked = check_phone(phone, await service.test_numbers(ctx, account, environment))
        if isinstance(checked, Rejection):
            raise unprocessable(checked)
        phone = checked
    if email is not None:
        checked_email = check_email(email)
        if isinstance(checked_email, Rejection):
            raise unprocessable(checked_email)
        email = checked_email
    if (
        list_id is not None
        and await ListRepository(session, account, environment).get(list_id) is None
    ):
        raise list_not_found(list_id)
    rows = await ContactRepository(session, account, environment).page(
        limit=page.limit,
        after=page.after,
        filters=ContactFilters(
            search=search.replace("\n", " ") if search else None,
            phone=phone,
            email=email,
            list_id=list_id,
        ),
    )
    return await page_out(session, principal, rows, page.limit)


@router.post(
    "/import",
    response_model=ImportAnswer,
    summary="Import contacts from CSV",
    openapi_extra=IMPORT_BODY,
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def import_contacts(
    request: Request, ctx: ContextDep, principal: PrincipalDep, list_id: ListIdQuery = None
) -> ImportAnswer:
    """A header row with a ``phone`` and/or ``email`` column (any case); every other
    column becomes a variable of that name (empty cells set nothing). A row whose
    phone or email is an existing contact's updates that contact (variables merged,
    the row's values winning); other rows create contacts. With ``listId``, every
    accepted row's contact joins the list. Rows are validated one by one; the answer
    counts them and lists the first 1,000 rejected with their line in the file (the
    header is line 1). Up to 100,000 rows (``TIDINGS_IMPORT_MAX_ROWS``)."""
    account, environment = principal.account_id, principal.environment
    media = request.headers.get("content-type", "")
    kind = media.split(";", 1)[0].strip().lower()
    if kind not in ("text/csv", "multipart/form-data"):
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not accepted here; send text/csv, or "
            "multipart/form-data with the file as 'file'."
        )
    source: AsyncIterator[bytes] = request.stream()
    if kind == "multipart/form-data":
        source = file_field(source, boundary_of(media))
    report = await service.import_csv(ctx, account, environment, source, list_id)
    return ImportAnswer.model_validate(
        {
            "rows": report.rows,
            "accepted": report.accepted,
            "created": report.created,
            "updated": report.updated,
            "rejected": report.rejected,
            "errors": [{"line": e.line, "code": e.code, "reason": e.reason} for e in report.errors],
        }
    )


@router.get(
    "/{id}",
    response_model=ContactOut,
    summary="Get a contact",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_contact(id: ContactId, principal: PrincipalDep, session: SessionDep) -> ContactOut:
    repo = ContactRepository(session, principal.account_id, principal.environment)
    contact = await repo.get(id)
    if contact is None:
        raise service.contact_not_found(id)
    states = await repo.opt_out_state([contact])
    return contact_out(contact, states[contact.id])


@router.patch(
    "/{id}",
    response_model=ContactOut,
    summary="Update a contact",
    responses=problem_responses(*AUTHENTICATED, 404, 409),
)
async def update_contact(
    id: ContactId, body: ContactUpdate, ctx: ContextDep, principal: PrincipalDep
) -> ContactOut:
    """Only the fields given change. ``variables`` is merged into the contact's: a
    name with a string value is set, a name with ``null`` is removed, names not given
    stay. ``"phone": null`` or ``"email": null`` removes it; one of the two must
    remain."""
    contact = await service.update_contact(
        ctx, principal.account_id, principal.environment, id, body
    )
    return await one_out(ctx, principal, contact)


@router.delete(
    "/{id}",
    status_code=204,
    summary="Delete a contact",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def delete_contact(id: ContactId, ctx: ContextDep, principal: PrincipalDep) -> Response:
    """Also removes it from every list. Opt-outs and suppressions stay: they belong
    to the phone number or address, not to the contact."""
    await service.delete_contact(ctx, principal.account_id, principal.environment, id)
    return Response(status_code=204)
