"""The send-time rule of spec section 7: in production, the sender's domain must be a
verified sending domain of the account, or the send answers 422
``sender_not_verified`` (before anything is stored or charged). The sandbox sends
from anything (its domain is the simulated ``sandbox.test``), and so does a
production account whose email providers sign nothing (only the ``simulator``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.email.addresses import parse_mailbox
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Unprocessable
from tidings.domains.models import EmailDomain
from tidings.providers.directory import ProviderDirectory


async def refuse_unverified_sender(
    session: AsyncSession, account_id: str, environment: Environment, sender: str
) -> None:
    if environment == Environment.SANDBOX:
        return
    domain = parse_mailbox(sender, "from").domain.lower()
    verified = await session.scalar(
        select(EmailDomain.id).where(
            EmailDomain.account_id == account_id,
            EmailDomain.environment == environment.value,
            EmailDomain.domain == domain,
            EmailDomain.verified_at.is_not(None),
        )
    )
    if verified is None:
        message = (
            f"{domain} is not a verified sending domain of this account: add it with "
            "POST /api/v4/email/domains, publish its records, then verify it."
        )
        raise Unprocessable(
            message,
            code="sender_not_verified",
            errors=[FieldError("from", "sender_not_verified", message)],
        )


# Kinds that DKIM-sign with the account's own domains; a production account whose
# email goes only to the simulator (staging, load tests) signs nothing.
SIGNING_KINDS = frozenset({"smtp"})


async def require_verified_sender(
    session: AsyncSession,
    directory: ProviderDirectory,
    account_id: str,
    environment: Environment,
    sender: str,
) -> None:
    """:func:`refuse_unverified_sender` when a provider that signs may take the
    account's email (the routes are the directory's cached ones)."""
    routes = await directory.routes(account_id, environment, "email")
    if any(route.kind in SIGNING_KINDS for route in routes):
        await refuse_unverified_sender(session, account_id, environment, sender)
