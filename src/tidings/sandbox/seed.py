"""Test data every account's sandbox starts with (spec sections 2 and 12).

The magic opted-out number is a real opt-out row, so the rule that refuses it
is the production rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.optouts import OptOutRepository
from tidings.core.environments import Environment
from tidings.providers.simulator.scenarios import OPTED_OUT
from tidings.templates.seed_data import seed_templates


async def seed_sandbox(session: AsyncSession, account_id: str, at: datetime) -> None:
    optouts = OptOutRepository(session)
    for channel in ("sms", "whatsapp"):
        await optouts.opt_out(
            account_id, Environment.SANDBOX, channel, OPTED_OUT, reason="sandbox", at=at
        )
    await seed_templates(session, account_id, at)
