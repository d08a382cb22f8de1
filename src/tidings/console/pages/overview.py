"""``/console``: the account today, in this environment.

Today's messages by channel and status (since 00:00 UTC), the credit balance
(production: the sandbox spends none), the providers' health as the providers API
reports it with the circuit state this process holds, and the last failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tidings.api.deps import ContextDep, SessionDep
from tidings.console import queries
from tidings.console.paths import CONSOLE
from tidings.console.rendering import render
from tidings.console.session import ConsoleUserDep
from tidings.core.environments import Environment
from tidings.credits.repository import CreditRepository
from tidings.messages.status import Status
from tidings.providers.schemas import ProviderOut

router = APIRouter(include_in_schema=False)

# The columns of the counts table, in the order of a message's life.
STATUS_COLUMNS = (
    Status.SCHEDULED,
    Status.QUEUED,
    Status.SENT,
    Status.DELIVERED,
    Status.READ,
    Status.RECEIVED,
    Status.FAILED,
    Status.UNDELIVERED,
    Status.CANCELED,
)
MAX_PROVIDERS = 100


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    provider: ProviderOut
    circuit: str


@router.get(CONSOLE)
async def overview_page(
    request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    now = ctx.clock.now()
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    counts = await queries.counts_since(session, user.tenant, midnight)
    failures = await queries.recent_failures(session, user.tenant)
    balance = None
    if user.environment == Environment.PRODUCTION:
        balance = await CreditRepository(session).balance(user.account_id)
    providers = await ctx.runtime.provider_service.page(
        user.tenant, after=None, limit=MAX_PROVIDERS
    )
    health = [
        ProviderHealth(provider, ctx.runtime.providers.circuit(provider.id).value)
        for provider in providers
    ]
    return render(
        request,
        "overview.html",
        user=user,
        since=midnight,
        counts=counts,
        columns=[status.value for status in STATUS_COLUMNS],
        balance=balance,
        providers=health,
        failures=failures,
    )
