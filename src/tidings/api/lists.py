"""Lists of contacts: ``/api/v4/lists`` (create, read, update, delete, list) and
their members, ``/api/v4/lists/{id}/contacts`` (spec sections 8 and 9)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.contacts import page_out
from tidings.api.creating import create_once
from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.contacts import service
from tidings.contacts.fields import Rejection
from tidings.contacts.lists import Additions, add_members, list_not_found
from tidings.contacts.models import ContactList
from tidings.contacts.repository import ContactFilters, ContactRepository, ListRepository
from tidings.contacts.schemas import (
    MAX_LIST_ADDITIONS,
    ContactOut,
    ListCreate,
    ListOut,
    ListUpdate,
    MembersAdd,
    MembersAdded,
    Rejected,
    list_out,
)
from tidings.contacts.upsert import ContactInput
from tidings.core.errors import FieldError, Unprocessable
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses

router = APIRouter(prefix="/api/v4/lists", tags=["Contacts"])

ListId = Annotated[
    str,
    Path(max_length=64, description="A list id.", examples=["lst_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
]


async def _out(ctx: ContextDep, principal: PrincipalDep, row: ContactList) -> ListOut:
    async with ctx.sessions() as session:
        repo = ListRepository(session, principal.account_id, principal.environment)
        counts = await repo.counts([row.id])
    return list_out(row, counts[row.id])


@router.post(
    "",
    status_code=201,
    response_model=ListOut,
    summary="Create a list",
    responses=problem_responses(*AUTHENTICATED, 409),
)
async def create_list(
    body: ListCreate, request: Request, ctx: ContextDep, principal: PrincipalDep
) -> JSONResponse:
    """An empty list; add contacts with ``POST /api/v4/lists/{id}/contacts`` or an
    import with ``?listId=``, and send to it with a bulk request's ``listId``."""

    async def show(row: ContactList) -> dict[str, Any]:
        return (await _out(ctx, principal, row)).model_dump(mode="json", by_alias=True)

    async def reload(list_id: str) -> ContactList:
        async with ctx.sessions() as session:
            made = await ListRepository(session, principal.account_id, principal.environment).get(
                list_id
            )
        if made is None:
            raise list_not_found(list_id)
        return made

    return await create_once(
        ctx,
        request,
        principal,
        create=lambda scope: service.create_list(
            ctx, principal.account_id, principal.environment, body, scope
        ),
        show=show,
        reload=reload,
    )


@router.get(
    "",
    response_model=Page[ListOut],
    summary="List lists",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_lists(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ListOut]:
    """Newest first, each with its number of contacts."""
    repo = ListRepository(session, principal.account_id, principal.environment)
    rows, cursor = next_cursor(await repo.page(limit=page.limit, after=page.after), page.limit)
    counts = await repo.counts([row.id for row in rows])
    return Page[ListOut](data=[list_out(row, counts[row.id]) for row in rows], next_cursor=cursor)


@router.get(
    "/{id}",
    response_model=ListOut,
    summary="Get a list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_list(id: ListId, principal: PrincipalDep, session: SessionDep) -> ListOut:
    repo = ListRepository(session, principal.account_id, principal.environment)
    row = await repo.get(id)
    if row is None:
        raise list_not_found(id)
    return list_out(row, (await repo.counts([row.id]))[row.id])


@router.patch(
    "/{id}",
    response_model=ListOut,
    summary="Update a list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def update_list(
    id: ListId, body: ListUpdate, ctx: ContextDep, principal: PrincipalDep
) -> ListOut:
    """Only the fields given change; ``"description": null`` removes it."""
    row = await service.update_list(ctx, principal.account_id, principal.environment, id, body)
    return await _out(ctx, principal, row)


@router.delete(
    "/{id}",
    status_code=204,
    summary="Delete a list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def delete_list(id: ListId, ctx: ContextDep, principal: PrincipalDep) -> Response:
    """Deletes the list and its memberships; the contacts stay."""
    await service.delete_list(ctx, principal.account_id, principal.environment, id)
    return Response(status_code=204)


@router.post(
    "/{id}/contacts",
    response_model=MembersAdded,
    summary="Add contacts to a list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def add_list_contacts(
    id: ListId, body: MembersAdd, ctx: ContextDep, principal: PrincipalDep
) -> MembersAdded:
    """Existing contacts by ``contactIds``, and ``contacts`` given by phone and/or
    email: each is found (its variables merged with the ones given) or created.
    Up to 10,000 entries in all. Entries that cannot be added are counted and
    listed with their reason; the rest are added. Adding a member twice is
    harmless (``alreadyMember``)."""
    account, environment = principal.account_id, principal.environment
    if len(body.contact_ids) + len(body.contacts) > MAX_LIST_ADDITIONS:
        message = f"Give at most {MAX_LIST_ADDITIONS} contactIds and contacts in all."
        raise Unprocessable(message, errors=[FieldError("contacts", "too_many", message)])
    extra_valid = await service.test_numbers(ctx, account, environment)
    entries: list[tuple[int, ContactInput | Rejection]] = [
        (index, service.contact_input(item.phone, item.email, item.variables, extra_valid))
        for index, item in enumerate(body.contacts)
    ]
    now = ctx.clock.now()

    async def write(session: AsyncSession) -> Additions:
        return await add_members(
            session,
            account_id=account,
            environment=environment,
            list_id=id,
            contact_ids=body.contact_ids,
            contacts=entries,
            at=now,
        )

    done = await ctx.runtime.writer.submit(write)
    rejected = done.rejected or []
    return MembersAdded(
        added=done.added,
        already_member=done.already_member,
        created=done.created,
        rejected=len(rejected),
        errors=[
            Rejected(field=field, code=rejection.code, message=rejection.reason)
            for field, rejection in rejected
        ],
    )


@router.get(
    "/{id}/contacts",
    response_model=Page[ContactOut],
    summary="List a list's contacts",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def list_list_contacts(
    id: ListId,
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ContactOut]:
    """Newest contact first, as ``GET /api/v4/contacts?listId=``."""
    account, environment = principal.account_id, principal.environment
    if await ListRepository(session, account, environment).get(id) is None:
        raise list_not_found(id)
    rows = await ContactRepository(session, account, environment).page(
        limit=page.limit, after=page.after, filters=ContactFilters(list_id=id)
    )
    return await page_out(session, principal, rows, page.limit)


@router.delete(
    "/{id}/contacts/{contactId}",
    status_code=204,
    summary="Remove a contact from a list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def remove_list_contact(
    id: ListId,
    contact_id: Annotated[
        str,
        Path(
            alias="contactId",
            max_length=64,
            description="A contact id.",
            examples=["con_01JDQ3W6V2X4N8ZB7YH5K9T0RM"],
        ),
    ],
    ctx: ContextDep,
    principal: PrincipalDep,
) -> Response:
    """The contact stays; only its membership goes. 404 ``not_a_member`` when it
    was not on the list."""
    account, environment = principal.account_id, principal.environment

    async def write(session: AsyncSession) -> bool:
        lists = ListRepository(session, account, environment)
        if await lists.get(id) is None:
            raise list_not_found(id)
        return await lists.remove_member(id, contact_id)

    if not await ctx.runtime.writer.submit(write):
        raise service.contact_not_member(contact_id, id)
    return Response(status_code=204)
