"""``/console/contacts``: the account's contacts and lists, a new list, and the CSV
import with its report.

Contacts and lists are read as the API reads them (the repositories, scoped by the
signed-in account and this environment; a list that is not this account's is a
404). A list is made with :func:`tidings.contacts.service.create_list` and a file is
imported with :func:`tidings.contacts.service.import_csv`, the API's own import: the
same columns, rules, limits and report.

The upload is ``multipart/form-data`` (the only console form that is): its CSRF
token is a field of the multipart body, read with the same streaming reader that
takes the file (:mod:`tidings.contacts.multipart`) and checked before anything is
imported. The body middleware has already read it whole, up to the bulk limit
(the path ends with ``/contacts/import``, as the API's does).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.console.config_form import field_errors
from tidings.console.csrf import EXPIRED, CheckedFormDep
from tidings.console.errors import CsrfRefused, PageNotFound
from tidings.console.form_errors import invalid_form
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.contacts import service
from tidings.contacts.csv_import import ImportReport
from tidings.contacts.models import ContactList
from tidings.contacts.multipart import boundary_of, file_field
from tidings.contacts.repository import ContactFilters, ContactRepository, ListRepository
from tidings.contacts.schemas import ListCreate, contact_out
from tidings.core.errors import ApiError, Unprocessable

router = APIRouter(prefix=f"{CONSOLE}/contacts", include_in_schema=False)

PAGE_SIZE = 50
MAX_LISTS = 200
MAX_TOKEN_BYTES = 256


async def _lists(
    session: AsyncSession, user: ConsoleUser
) -> tuple[list[ContactList], dict[str, int]]:
    repo = ListRepository(session, user.account_id, user.environment)
    rows = (await repo.page(limit=MAX_LISTS, after=None))[:MAX_LISTS]
    return rows, await repo.counts([row.id for row in rows])


async def _list(session: AsyncSession, user: ConsoleUser, list_id: str) -> ContactList:
    found = await ListRepository(session, user.account_id, user.environment).get(list_id[:64])
    if found is None:
        raise PageNotFound(f"There is no list {list_id[:64]} in this account's {user.environment}.")
    return found


async def _page(
    request: Request,
    user: ConsoleUser,
    session: AsyncSession,
    *,
    report: ImportReport | None = None,
    values: Mapping[str, str] | None = None,
    error: ApiError | None = None,
    import_error: ApiError | None = None,
) -> HTMLResponse:
    query = request.query_params
    search = query.get("q", "").strip()[:200]
    list_id = query.get("list", "")[:64] or None
    shown_list = await _list(session, user, list_id) if list_id else None
    after = query.get("after", "")[:64] or None
    repo = ContactRepository(session, user.account_id, user.environment)
    rows = await repo.page(
        limit=PAGE_SIZE,
        after=after,
        filters=ContactFilters(search=search.replace("\n", " ") or None, list_id=list_id),
    )
    shown = rows[:PAGE_SIZE]
    states = await repo.opt_out_state(shown)
    lists, counts = await _lists(session, user)
    failed = error or import_error
    return render(
        request,
        "contacts.html",
        user=user,
        status=failed.status if failed else 200,
        contacts=[contact_out(row, states[row.id]) for row in shown],
        search=search,
        shown_list=shown_list,
        next_after=shown[-1].id if len(rows) > PAGE_SIZE else None,
        lists=lists,
        counts=counts,
        report=report,
        values=values or {},
        error=error.detail if error else None,
        errors=field_errors(error.errors) if error else {},
        import_error=import_error.detail if import_error else None,
        import_errors=[f"{e.field}: {e.message}" for e in import_error.errors]
        if import_error
        else [],
        created=query.get("created") == "1",
    )


@router.get("")
async def contacts_page(
    request: Request, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    return await _page(request, user, session)


@router.post("/lists")
async def create_list(
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    try:
        try:
            body = ListCreate(
                name=form.get("name", "").strip(),
                description=form.get("description", "").strip() or None,
            )
        except ValidationError as invalid:
            raise invalid_form(invalid) from None
        row = await service.create_list(ctx, user.account_id, user.environment, body, None)
    except ApiError as error:
        return await _page(request, user, session, values=form, error=error)
    assert isinstance(row, ContactList)  # no Idempotency-Key: never an earlier answer
    target = page_links(request).to("/contacts", list=row.id, created="1")
    return RedirectResponse(target, status_code=303)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _field(body: bytes, boundary: bytes, name: str) -> bytes | None:
    """A small multipart field (the token, the list), or None without it."""
    chunks = []
    try:
        async for chunk in file_field(_once(body), boundary, name):
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_TOKEN_BYTES:
                return None
    except Unprocessable:
        return None
    return b"".join(chunks)


@router.post("/import")
async def import_contacts(
    request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    """The file's report on the contacts page: rows read, created, updated, rejected
    (the first of them with their line and why)."""
    media = request.headers.get("content-type", "")
    if media.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise CsrfRefused(EXPIRED)
    try:
        boundary = boundary_of(media)
    except Unprocessable:
        raise CsrfRefused(EXPIRED) from None
    body = await request.body()
    token = await _field(body, boundary, "csrf")
    if token is None or not hmac.compare_digest(user.csrf.encode(), token):
        raise CsrfRefused(EXPIRED)
    list_id = ((await _field(body, boundary, "list")) or b"").decode("utf-8", "replace").strip()
    if list_id:
        await _list(session, user, list_id)
    try:
        report = await service.import_csv(
            ctx,
            user.account_id,
            user.environment,
            file_field(_once(body), boundary),
            list_id or None,
        )
    except ApiError as error:
        return await _page(request, user, session, import_error=error)
    # A session of its own: the request's began before the import wrote.
    async with ctx.sessions() as fresh:
        return await _page(request, user, fresh, report=report)
