"""Sandbox-only endpoints: ``POST /api/v4/sandbox/inbound`` simulates a contact."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from tidings.api.deps import ContextDep, PrincipalDep
from tidings.channels.phone import to_e164
from tidings.core.environments import Environment
from tidings.core.errors import Forbidden
from tidings.core.ids import new_id
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiRequest
from tidings.messages.repository import MessageRepository
from tidings.messages.schemas import MessageOut, message_out
from tidings.providers.base import InboundMessage

router = APIRouter(prefix="/api/v4/sandbox", tags=["Sandbox"])

# The number a simulated contact writes to: the sandbox's own (the real kinds report
# the business number the message reached; an inbound message's `to` is never empty).
SANDBOX_NUMBER = "+15550000000"


class InboundRequest(ApiRequest):
    channel: Literal["whatsapp", "sms"]
    from_: str = Field(alias="from", min_length=1, max_length=32, examples=["+393331234567"])
    body: str = Field(min_length=1, max_length=4096, examples=["Hi! Is my order on its way?"])


@router.post(
    "/inbound",
    response_model=MessageOut,
    status_code=201,
    summary="Simulate a contact writing in (sandbox)",
    responses=problem_responses(*AUTHENTICATED, 403),
)
async def simulate_inbound(
    body: InboundRequest, ctx: ContextDep, principal: PrincipalDep
) -> MessageOut:
    """Records a message from the contact, as a provider's webhook would: it opens the
    WhatsApp window, handles STOP/START on SMS, and fires ``message.received``."""
    if principal.environment != Environment.SANDBOX:
        raise Forbidden("Simulated inbound messages exist only in the sandbox.")
    provider = await ctx.runtime.providers.require(
        principal.account_id, principal.environment, body.channel
    )
    sender = to_e164(body.from_, "from", extra_valid=provider.test_numbers)
    message = await ctx.runtime.inbound.receive(
        InboundMessage(
            channel=body.channel,
            sender=sender,
            recipient=SANDBOX_NUMBER,
            body=body.body,
            at=ctx.clock.now(),
            external_id=f"sbx.in.{new_id('msg')}",
        ),
        account_id=principal.account_id,
        environment=principal.environment,
    )
    async with ctx.sessions() as session:
        events = await MessageRepository(session).events(message.id)
    return message_out(message, events)
