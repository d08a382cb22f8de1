"""``/console/domains``: the account's sending domains, the DNS records to publish
(each with a copy button), each record's status and what DNS holds instead, and the
verify button.

Everything goes through :class:`~tidings.domains.service.DomainService` (the API's),
scoped by the signed-in account and this environment; a page shows the service's
own answer (:meth:`DomainService.out`), so the console and the API say the same. In
the sandbox the one domain is the simulated ``sandbox.test``, always verified, and
the service refuses changes (409 ``sandbox_is_simulated``), which the page says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.api.deps import ContextDep
from tidings.console.config_form import field_errors
from tidings.console.csrf import CheckedFormDep
from tidings.console.errors import PageNotFound
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import ApiError, NotFound
from tidings.domains.service import SANDBOX_DOMAIN, DomainScope, DomainService

router = APIRouter(prefix=f"{CONSOLE}/domains", include_in_schema=False)

SANDBOX_KEYS = (SANDBOX_DOMAIN, "dom_sandbox")
SIMULATED = (
    "The sandbox sends from the simulated domain sandbox.test, always verified: "
    "nothing to publish. Add your own domains in production."
)


def _service(ctx: AppContext) -> DomainService:
    domains: DomainService = ctx.runtime.email.domains
    return domains


def _scope(user: ConsoleUser) -> DomainScope:
    return DomainScope(user.account_id, user.environment)


def _sandbox(user: ConsoleUser) -> bool:
    return user.environment == Environment.SANDBOX


async def _domain(ctx: AppContext, user: ConsoleUser, key: str) -> dict[str, Any]:
    """The service's answer for one domain of this account and environment."""
    service = _service(ctx)
    key = key[:253]
    if _sandbox(user) and key in SANDBOX_KEYS:
        return service.sandbox_out()
    try:
        return service.out(await service.get(_scope(user), key))
    except NotFound:
        raise PageNotFound(
            f"There is no sending domain {key} in this account's {user.environment}."
        ) from None


async def _list_page(
    request: Request,
    user: ConsoleUser,
    ctx: AppContext,
    *,
    values: Mapping[str, str] | None = None,
    error: ApiError | None = None,
) -> HTMLResponse:
    service = _service(ctx)
    if _sandbox(user):
        domains = [service.sandbox_out()]
    else:
        domains = [service.out(row) for row in await service.all(_scope(user))]
    return render(
        request,
        "domains.html",
        user=user,
        status=error.status if error else 200,
        domains=domains,
        simulated=SIMULATED if _sandbox(user) else None,
        values=values or {},
        error=error.detail if error else None,
        errors=field_errors(error.errors) if error else {},
    )


@router.get("")
async def domains_page(request: Request, user: ConsoleUserDep, ctx: ContextDep) -> HTMLResponse:
    return await _list_page(request, user, ctx)


@router.post("")
async def create_domain(
    request: Request, user: ConsoleUserDep, form: CheckedFormDep, ctx: ContextDep
) -> Response:
    try:
        row = await _service(ctx).create(_scope(user), form.get("domain", "")[:253])
    except ApiError as error:
        return await _list_page(request, user, ctx, values=form, error=error)
    return RedirectResponse(page_links(request).to(f"/domains/{row.id}"), status_code=303)


def _domain_page(
    request: Request,
    user: ConsoleUser,
    domain: dict[str, Any],
    *,
    error: ApiError | None = None,
    verified: bool = False,
) -> HTMLResponse:
    return render(
        request,
        "domain.html",
        user=user,
        status=error.status if error else 200,
        switch_path="/domains",
        domain=domain,
        simulated=SIMULATED if _sandbox(user) else None,
        verified=verified,
        error=error.detail if error else None,
    )


@router.get("/{key}")
async def domain_page(
    key: str, request: Request, user: ConsoleUserDep, ctx: ContextDep
) -> HTMLResponse:
    domain = await _domain(ctx, user, key)
    return _domain_page(request, user, domain, verified=request.query_params.get("checked") == "1")


@router.post("/{key}/verify")
async def verify_domain(
    key: str, request: Request, user: ConsoleUserDep, form: CheckedFormDep, ctx: ContextDep
) -> Response:
    """Looks the records up in DNS now (the service also re-checks them on its own)."""
    domain = await _domain(ctx, user, key)
    try:
        await _service(ctx).verify(_scope(user), domain["id"])
    except ApiError as error:
        return _domain_page(request, user, domain, error=error)
    target = page_links(request).to(f"/domains/{domain['id']}", checked="1")
    return RedirectResponse(target, status_code=303)


@router.post("/{key}/delete")
async def delete_domain(
    key: str, request: Request, user: ConsoleUserDep, form: CheckedFormDep, ctx: ContextDep
) -> Response:
    domain = await _domain(ctx, user, key)
    try:
        await _service(ctx).delete(_scope(user), domain["id"])
    except ApiError as error:
        return _domain_page(request, user, domain, error=error)
    return RedirectResponse(page_links(request).to("/domains"), status_code=303)
