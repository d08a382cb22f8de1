"""``/console/templates``: the account's WhatsApp templates with their status, and
the sync button.

Templates are read as the API reads them (:class:`~tidings.templates.repository.
TemplateRepository` scoped by account and environment, shown as
:func:`~tidings.templates.schemas.template_out`). The sync is the API's: in production
it reads the business account of every WhatsApp Cloud API provider
(:meth:`TemplateSync.sync_account`); in the sandbox the catalogue is simulated (the
seeded templates, and those submitted, which the simulated review approves or rejects
after a moment), so the sync only runs the simulated review now.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.api.deps import ContextDep, SessionDep
from tidings.console.csrf import CheckedFormDep
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUserDep
from tidings.core.environments import Environment
from tidings.providers.errors import DeliveryError
from tidings.templates.repository import TemplateRepository
from tidings.templates.schemas import template_out

router = APIRouter(prefix=f"{CONSOLE}/templates", include_in_schema=False)

PAGE_SIZE = 100
STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED")


@router.get("")
async def templates_page(
    request: Request, user: ConsoleUserDep, session: SessionDep
) -> HTMLResponse:
    query = request.query_params
    status = query.get("status", "")
    name = query.get("name", "").strip()[:512]
    after = query.get("after", "")[:64] or None
    rows = await TemplateRepository(session).list(
        user.account_id,
        user.environment,
        status=status if status in STATUSES else None,
        name=name or None,
        after=after,
        limit=PAGE_SIZE + 1,
    )
    shown = rows[:PAGE_SIZE]
    synced = query.get("synced", "")
    return render(
        request,
        "templates.html",
        user=user,
        templates=[template_out(row) for row in shown],
        statuses=STATUSES,
        wanted=status if status in STATUSES else "",
        name=name,
        next_after=shown[-1].id if len(rows) > PAGE_SIZE else None,
        sandbox=user.environment == Environment.SANDBOX,
        synced=synced if synced.replace(",", "").isdigit() else None,
        sync_error=None,
    )


@router.post("/sync")
async def sync_templates(
    request: Request, user: ConsoleUserDep, form: CheckedFormDep, ctx: ContextDep
) -> Response:
    links = page_links(request)
    if user.environment == Environment.SANDBOX:
        # The simulated catalogue: its review decides what is due now.
        ctx.runtime.template_reviewer.wake()
        return RedirectResponse(links.to("/templates", synced="0,0"), status_code=303)
    try:
        catalogs, changed = await ctx.runtime.template_sync.sync_account(user.account_id)
    except DeliveryError as error:
        async with ctx.sessions() as session:
            rows = await TemplateRepository(session).list(
                user.account_id, user.environment, status=None, limit=PAGE_SIZE
            )
        return render(
            request,
            "templates.html",
            user=user,
            status=503,
            templates=[template_out(row) for row in rows],
            statuses=STATUSES,
            wanted="",
            name="",
            next_after=None,
            sandbox=False,
            synced=None,
            sync_error=f"The WhatsApp Business account's templates could not be read: "
            f"{error.message}",
        )
    return RedirectResponse(links.to("/templates", synced=f"{catalogs},{changed}"), status_code=303)
