"""The HTTP side of a single send: what the request says (the idempotency key,
``Prefer: respond-async``), the tenant, and the answer as a response. The flow
itself is :class:`tidings.messages.service.SendFlow`."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from tidings.api.deps import Principal
from tidings.context import AppContext
from tidings.core.tenancy import TenantScope
from tidings.http.json_answer import PlainJSONResponse
from tidings.idempotency.service import scope_of
from tidings.messages.service import Prepare, SendAnswer, SendFlow


def wants_async(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(token.strip().lower() == "respond-async" for token in prefer.split(","))


def tenant_of(principal: Principal) -> TenantScope:
    return TenantScope(principal.account_id, principal.environment)


def as_response(answer: SendAnswer) -> JSONResponse:
    headers = {"Preference-Applied": "respond-async"} if answer.async_applied else None
    return PlainJSONResponse(answer.body, status_code=answer.status, headers=headers)


async def send_answer(
    ctx: AppContext, request: Request, tenant: TenantScope, prepare: Prepare
) -> SendAnswer:
    key = await scope_of(request, tenant.account_id, tenant.environment.value)
    return await SendFlow(ctx, tenant).run(prepare, key=key, respond_async=wants_async(request))


async def send(
    ctx: AppContext, request: Request, principal: Principal, prepare: Prepare
) -> JSONResponse:
    """Accept one message for the caller and answer as the contract says."""
    return as_response(await send_answer(ctx, request, tenant_of(principal), prepare))
