"""The rules of an SMS send: recipient, sender id, length, validity, opt-out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.phone import to_e164
from tidings.channels.sms.encoding import segment
from tidings.contacts.optouts import OptOutRepository
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Unprocessable
from tidings.messages.drafts import Draft
from tidings.providers.registry import Capabilities
from tidings.settings import Settings

_NUMERIC_SENDER = re.compile(r"^\+?[0-9]{3,15}$")
# GSM alphanumeric originators: up to 11 characters, at least one letter.
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ._&\-]{1,11}$")
MAX_VALIDITY = timedelta(days=7)
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def check_sender(sender: str | None) -> str | None:
    if sender is None:
        return None
    sender = sender.strip()
    if _NUMERIC_SENDER.match(sender) or _ALPHANUMERIC_SENDER.match(sender):
        return sender
    raise Unprocessable(
        f"{sender!r} cannot be an SMS sender id.",
        errors=[
            FieldError(
                "from",
                "invalid_sender",
                "Use up to 11 letters and digits (with at least one letter), or a number.",
            )
        ],
    )


def check_schedule(scheduled_at: datetime | None, clock: Clock) -> datetime | None:
    if scheduled_at is None:
        return None
    if scheduled_at.tzinfo is None:
        raise Unprocessable(
            "scheduledAt needs a time zone, e.g. 2026-11-24T08:00:00Z.",
            errors=[FieldError("scheduledAt", "timezone_required", "Add Z or an offset.")],
        )
    if scheduled_at - clock.now() > MAX_SCHEDULE_AHEAD:
        raise Unprocessable(
            "scheduledAt may be at most a year ahead.",
            errors=[FieldError("scheduledAt", "too_far", "At most 366 days from now.")],
        )
    # A time already past means "now", as clients' clocks drift.
    return scheduled_at if scheduled_at > clock.now() else None


def opted_out_error(to: str, channel: str) -> Unprocessable:
    return Unprocessable(
        f"{to} has opted out of {channel} messages from this account (they sent STOP).",
        code="recipient_opted_out",
        errors=[FieldError("to", "recipient_opted_out", "The recipient opted out.")],
    )


async def check_not_opted_out(
    session: AsyncSession, account_id: str, environment: Environment, channel: str, to: str
) -> None:
    if await OptOutRepository(session).is_opted_out(account_id, environment, channel, to):
        raise opted_out_error(to, channel)


async def sms_draft(
    session: AsyncSession,
    *,
    account_id: str,
    environment: Environment,
    provider: Capabilities,
    settings: Settings,
    clock: Clock,
    to: str,
    body: str,
    sender: str | None,
    scheduled_at: datetime | None,
    validity_period: int | None,
) -> Draft:
    recipient = to_e164(to, "to", extra_valid=provider.test_numbers)
    split = segment(body)
    if split.segments > settings.sms_max_segments:
        raise Unprocessable(
            f"The message needs {split.segments} {split.encoding} segments; "
            f"the maximum is {settings.sms_max_segments}.",
            code="message_too_long",
            errors=[FieldError("body", "message_too_long", f"{split.segments} segments.")],
            extra={"segments": split.segments, "encoding": split.encoding},
        )
    content: dict[str, object] = {}
    if validity_period is not None:
        content["validityPeriod"] = validity_period
    draft = Draft(
        channel="sms",
        to=recipient,
        sender=check_sender(sender),
        body=body,
        content=content,
        segments=split.segments,
        encoding=split.encoding,
        cost=settings.prices.sms_segment * Decimal(split.segments),
        scheduled_at=check_schedule(scheduled_at, clock),
        # The last check, so it is left to the write's transaction (no read here).
        opt_out_channel="sms",
    )
    return draft
