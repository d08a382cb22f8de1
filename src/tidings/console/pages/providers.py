"""``/console/providers``: the account's providers, adding and changing them, the
check button, and what they reported that matched no message.

Every read and write goes through :class:`~tidings.providers.service.ProviderService`
(the API's and the command line's), scoped by the signed-in account and this
environment. A kind's form is built from its config model
(:mod:`tidings.console.config_form`); the service validates it and its field errors
are shown next to the inputs. Secrets are write-only.

In the sandbox the providers are the simulated ones: the pages show them, and the
service refuses a change (409 ``sandbox_is_simulated``), which the page says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from tidings.api.deps import ContextDep
from tidings.console.config_form import (
    ConfigField,
    config_fields,
    config_from_form,
    field_errors,
    kind_notes,
)
from tidings.console.csrf import CheckedFormDep
from tidings.console.errors import PageNotFound
from tidings.console.form_errors import invalid_form
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import ApiError, NotFound
from tidings.providers.models import ProviderRow
from tidings.providers.registry import CHANNELS, MASK, KindRegistry, KindSpec
from tidings.providers.schemas import CheckOut, ProviderCreate, ProviderOut, ProviderUpdate

router = APIRouter(prefix=f"{CONSOLE}/providers", include_in_schema=False)

MAX_PROVIDERS = 200
UNMATCHED_SHOWN = 50
SIMULATED = (
    "The sandbox's providers are simulated: they cannot be added, changed or removed "
    "here. Configure real providers in production."
)


@dataclass(frozen=True, slots=True)
class Listed:
    provider: ProviderOut
    circuit: str


def _kinds(ctx: AppContext) -> KindRegistry:
    kinds: KindRegistry = ctx.runtime.providers.kinds
    return kinds


def _circuit(ctx: AppContext, provider_id: str) -> str:
    return str(ctx.runtime.providers.circuit(provider_id).value)


def _base_url(request: Request) -> str:
    return str(request.base_url)


async def _provider(ctx: AppContext, user: ConsoleUser, provider_id: str) -> ProviderOut:
    try:
        return await ctx.runtime.provider_service.get(user.tenant, provider_id[:64])
    except NotFound:
        raise PageNotFound(
            f"There is no provider {provider_id[:64]} in this account's {user.environment}."
        ) from None


@router.get("")
async def providers_page(request: Request, user: ConsoleUserDep, ctx: ContextDep) -> HTMLResponse:
    providers = await ctx.runtime.provider_service.page(
        user.tenant, after=None, limit=MAX_PROVIDERS, base_url=_base_url(request)
    )
    return render(
        request,
        "providers.html",
        user=user,
        providers=[Listed(p, _circuit(ctx, p.id)) for p in providers],
        simulated=SIMULATED if user.environment == Environment.SANDBOX else None,
    )


def _kind_choices(kinds: KindRegistry) -> list[tuple[str, list[KindSpec]]]:
    return [
        (channel, [spec for name in kinds.names(channel) if (spec := kinds.get(name))])
        for channel in sorted(CHANNELS)
    ]


def _new_form(
    request: Request,
    user: ConsoleUser,
    ctx: AppContext,
    *,
    channel: str,
    kind: str,
    values: Mapping[str, str] | None = None,
    error: ApiError | None = None,
) -> HTMLResponse:
    kinds = _kinds(ctx)
    spec = kinds.get(kind) if channel in CHANNELS else None
    if spec is not None and channel not in spec.channels:
        spec = None
    fields = config_fields(spec.config) if spec else []
    return render(
        request,
        "provider_new.html",
        user=user,
        status=error.status if error else 200,
        simulated=SIMULATED if user.environment == Environment.SANDBOX else None,
        choices=_kind_choices(kinds),
        channel=channel,
        kind=kind,
        spec=spec,
        notes=kind_notes(spec.config) if spec else None,
        fields=fields,
        values=values
        or {"priority": "1", "enabled": "on", **{f.form_name: f.shown(None) for f in fields}},
        error=error.detail if error else None,
        errors=field_errors(error.errors) if error else {},
        stored_secrets=frozenset(),
    )


@router.get("/new")
async def new_provider_page(
    request: Request, user: ConsoleUserDep, ctx: ContextDep
) -> HTMLResponse:
    # The chooser sends "channel:kind" as one value; a link may name both apart.
    picked = request.query_params.get("pick", "")
    channel, _, kind = picked.partition(":")
    channel = (channel or request.query_params.get("channel", ""))[:16]
    kind = (kind or request.query_params.get("kind", ""))[:32]
    return _new_form(request, user, ctx, channel=channel, kind=kind)


@router.post("/new")
async def create_provider(
    request: Request, user: ConsoleUserDep, form: CheckedFormDep, ctx: ContextDep
) -> Response:
    channel, kind = form.get("channel", "")[:16], form.get("kind", "")[:32]
    spec = _kinds(ctx).get(kind)
    fields = config_fields(spec.config) if spec else []
    try:
        try:
            # Validated as the API validates its body (the text of a number too).
            body = ProviderCreate.model_validate(
                {
                    "channel": channel,
                    "kind": kind,
                    "name": form.get("name", "").strip(),
                    "priority": form.get("priority", "1").strip() or 1,
                    "enabled": "enabled" in form,
                    "config": config_from_form(fields, form, editing=False),
                }
            )
        except ValidationError as invalid:
            raise invalid_form(invalid) from None
        created = await ctx.runtime.provider_service.create(user.tenant, body)
    except ApiError as error:
        return _new_form(
            request, user, ctx, channel=channel, kind=kind, values=_kept(form), error=error
        )
    assert isinstance(created, ProviderRow)
    target = page_links(request).to(f"/providers/{created.id}", added="1")
    return RedirectResponse(target, status_code=303)


def _kept(form: Mapping[str, str]) -> dict[str, str]:
    """A posted form's values to show again: everything but the secrets, which the
    template never fills in anyway."""
    return {name: value for name, value in form.items() if name != "csrf"}


def _provider_page(
    request: Request,
    user: ConsoleUser,
    ctx: AppContext,
    provider: ProviderOut,
    unmatched: list[Any],
    *,
    check: CheckOut | None = None,
    values: Mapping[str, str] | None = None,
    error: ApiError | None = None,
    status: int = 200,
) -> HTMLResponse:
    spec = _kinds(ctx).get(provider.kind)
    fields: list[ConfigField] = config_fields(spec.config) if spec else []
    stored = {f.form_name: f.shown(provider.config) for f in fields}
    if values is None:
        values = {
            **stored,
            "name": provider.name,
            "priority": str(provider.priority),
            **({"enabled": "on"} if provider.enabled else {}),
        }
    return render(
        request,
        "provider.html",
        user=user,
        status=error.status if error else status,
        # A provider exists in one environment: the switch leads to the list.
        switch_path="/providers",
        provider=provider,
        circuit=_circuit(ctx, provider.id),
        spec=spec,
        notes=kind_notes(spec.config) if spec else None,
        fields=fields,
        values=values,
        stored_secrets=frozenset(
            f.name for f in fields if f.is_secret and provider.config.get(f.name) == MASK
        ),
        unmatched=unmatched,
        check=check,
        added=request.query_params.get("added") == "1",
        saved=request.query_params.get("saved") == "1",
        simulated=SIMULATED if user.environment == Environment.SANDBOX else None,
        error=error.detail if error else None,
        errors=field_errors(error.errors) if error else {},
    )


async def _unmatched(ctx: AppContext, user: ConsoleUser, provider_id: str) -> list[Any]:
    return await ctx.runtime.provider_service.unmatched(
        user.tenant, provider_id, after=None, limit=UNMATCHED_SHOWN
    )


@router.get("/{provider_id}")
async def provider_page(
    provider_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep
) -> HTMLResponse:
    provider = await _provider(ctx, user, provider_id)
    unmatched = await _unmatched(ctx, user, provider.id)
    return _provider_page(request, user, ctx, provider, unmatched)


@router.post("/{provider_id}")
async def update_provider(
    provider_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
) -> Response:
    provider = await _provider(ctx, user, provider_id)
    spec = _kinds(ctx).get(provider.kind)
    fields = config_fields(spec.config) if spec else []
    try:
        try:
            patch = ProviderUpdate.model_validate(
                {
                    "name": form.get("name", "").strip(),
                    "priority": form.get("priority", "").strip() or None,
                    "enabled": "enabled" in form,
                    "config": config_from_form(fields, form, editing=True),
                }
            )
        except ValidationError as invalid:
            raise invalid_form(invalid) from None
        await ctx.runtime.provider_service.update(user.tenant, provider.id, patch)
    except ApiError as error:
        unmatched = await _unmatched(ctx, user, provider.id)
        return _provider_page(
            request, user, ctx, provider, unmatched, values=_kept(form), error=error
        )
    target = page_links(request).to(f"/providers/{provider.id}", saved="1")
    return RedirectResponse(target, status_code=303)


@router.post("/{provider_id}/check")
async def check_provider(
    provider_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
) -> HTMLResponse:
    """The check's answer on the provider's page (shown once: reloading the page
    does not check again)."""
    provider = await _provider(ctx, user, provider_id)
    answer = await ctx.runtime.provider_service.check(user.tenant, provider.id)
    # Read again: the check noted the provider's health.
    provider = await _provider(ctx, user, provider.id)
    unmatched = await _unmatched(ctx, user, provider.id)
    return _provider_page(request, user, ctx, provider, unmatched, check=answer)


@router.post("/{provider_id}/delete")
async def delete_provider(
    provider_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
) -> Response:
    provider = await _provider(ctx, user, provider_id)
    try:
        await ctx.runtime.provider_service.delete(user.tenant, provider.id)
    except ApiError as error:
        unmatched = await _unmatched(ctx, user, provider.id)
        return _provider_page(request, user, ctx, provider, unmatched, error=error)
    return RedirectResponse(page_links(request).to("/providers"), status_code=303)
