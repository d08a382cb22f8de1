"""The sandbox providers of the three channels: real implementations of the
provider protocol that send nothing.

Each acts the scenario of its recipient (:mod:`tidings.providers.simulator.scenarios`):
refusing, being unavailable for a number of attempts, or accepting and having
the :class:`~tidings.sandbox.network.SandboxNetwork` report what follows. The
email provider keeps every message it accepts, as the MIME a real one would
have sent.
"""

from __future__ import annotations

import collections
import secrets
import time
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.base import (
    DeliveryResult,
    OutboundMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from tidings.channels.email.stored import render_outbound_email
from tidings.core.clock import Clock
from tidings.db.group_commit import GroupCommitter
from tidings.providers.simulator.mailbox import SandboxEmail
from tidings.sandbox.network import SandboxNetwork
from tidings.providers.simulator.scenarios import MAGIC_NUMBERS, phone_scenario, scenario_for

# How long ago a simulated contact "wrote in", which keeps the WhatsApp window open.
SIMULATED_INBOUND_AGE = timedelta(hours=1)


class SandboxProvider:
    """One simulated provider for one channel."""

    name = "sandbox"

    def __init__(
        self,
        channel: str,
        *,
        network: SandboxNetwork,
        clock: Clock,
        writer: GroupCommitter,
        throttle_per_second: float = 0,
    ) -> None:
        self.channel = channel
        self._throttle = throttle_per_second
        # What this provider was handed and when (monotonic seconds): how tests
        # count what a provider received, as an operator would in its dashboard.
        self.received: collections.deque[tuple[float, str]] = collections.deque(maxlen=200_000)
        self.test_numbers = MAGIC_NUMBERS if channel != "email" else frozenset()
        self._network = network
        self._clock = clock
        self._writer = writer

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        now = time.monotonic()
        if self._throttle and self._recent(now) >= self._throttle:
            raise ThrottledError(
                "throttled",
                f"The simulated provider takes {self._throttle:g} messages a second.",
                retry_after=1.0,
            )
        self.received.append((now, message.id))
        scenario = scenario_for(self.channel, message.to)
        if scenario.refusal is not None:
            raise PermanentDeliveryError(*scenario.refusal)
        if message.attempt <= scenario.unavailable_attempts:
            raise RetryableDeliveryError(
                scenario.unavailable_code,
                f"The simulated provider is unavailable (attempt {message.attempt}).",
            )
        provider_message_id = f"sbx.{secrets.token_hex(12)}"
        if self.channel == "email":
            await self._keep_email(message, provider_message_id)
        self._network.deliver_later(self.name, provider_message_id, scenario.steps)
        return DeliveryResult(provider_message_id=provider_message_id)

    def _recent(self, now: float) -> int:
        count = 0
        for at, _ in reversed(self.received):
            if now - at >= 1.0:
                break
            count += 1
        return count

    async def _keep_email(self, message: OutboundMessage, provider_message_id: str) -> None:
        now = self._clock.now()
        mime = render_outbound_email(message, date=now)
        kept = SandboxEmail(
            id=provider_message_id,
            message_id=message.id,
            account_id=message.account_id,
            environment=message.environment.value,
            mime=mime,
            created_at=now,
        )

        async def keep(session: AsyncSession) -> None:
            session.add(kept)

        await self._writer.submit(keep)

    async def last_inbound_at(self, contact: str) -> datetime | None:
        if self.channel != "whatsapp" or not phone_scenario(self.channel, contact).window_open:
            return None
        return self._clock.now() - SIMULATED_INBOUND_AGE

    async def close(self) -> None:
        return None
