"""The simulator: a real implementation of the provider seam that sends nothing.

It acts the scenario of each recipient (:mod:`.scenarios`): refusing, being
unavailable for a number of attempts, or accepting and handing back, with its
acceptance, every report the scenario owes, each due a little later, as a network
that sends receipts would. They are stored in the inbox in the verdict's own
transaction. Those reports then travel the path every provider's do
(inbox, processor, status machine). The email simulator keeps each message it
accepts, as the MIME a relay would have received (:mod:`.mailbox`).

A production account can be wired to it on purpose (kind ``simulator``) for
staging and load tests; its ``scenario`` config makes the whole provider fail in
one way, which is how failover, circuit breakers and the contract suite are
exercised without a network.
"""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.email.stored import render_outbound_email
from tidings.core.random_bytes import random_bytes
from tidings.providers.base import (
    Accepted,
    OutboundMessage,
    ProviderDeps,
    ProviderRef,
    RawReport,
)
from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from tidings.providers.registry import KindConfig, ProviderIdentity
from tidings.providers.simulator.mailbox import SandboxEmail
from tidings.providers.simulator.scenarios import Step, scenario_for

Scenario = Literal["normal", "unavailable", "credentials_refused", "throttled", "black_hole"]


class SimulatorConfig(KindConfig):
    """``scenario`` makes the whole provider act one failure (default: each recipient's
    own scenario, as in the sandbox); ``messagesPerSecond`` paces it as an agreed rate
    would a real one (0: unpaced)."""

    scenario: Scenario = "normal"
    messages_per_second: float = Field(default=0, ge=0)


class SimulatorProvider:
    kind = "simulator"

    def __init__(
        self, identity: ProviderIdentity, config: SimulatorConfig, deps: ProviderDeps
    ) -> None:
        self.id = identity.id
        self.channel = identity.channel
        self._scenario = config.scenario
        self._deps = deps
        self._throttle = deps.throttle_per_second
        # Send times of the last second, for the optional "slow down" answers.
        self._recent: collections.deque[float] = collections.deque()

    async def send(self, message: OutboundMessage) -> Accepted:
        self._fail_as_configured()
        if self._scenario == "black_hole":
            # Never answers: the dispatcher's deadline ends the attempt.
            await asyncio.Event().wait()
        self._pace()
        scenario = scenario_for(self.channel, message.to)
        if scenario.refusal is not None:
            raise PermanentDeliveryError(*scenario.refusal)
        if message.attempt <= scenario.unavailable_attempts:
            raise RetryableDeliveryError(
                scenario.unavailable_code,
                f"The simulated provider is unavailable (attempt {message.attempt}).",
            )
        external_id = simulated_id()
        if self.channel == "email":
            await self._keep_email(message, external_id)
        return Accepted(
            (ProviderRef(external_id),), reports=tuple(self._reports(external_id, scenario.steps))
        )

    async def check(self) -> str:
        self._fail_as_configured()
        if self._scenario == "black_hole":
            raise ConnectionDown("provider_timeout", "The simulated network does not answer.")
        return "The simulated network answered; nothing was sent."

    async def close(self) -> None:
        return None

    def _fail_as_configured(self) -> None:
        if self._scenario == "unavailable":
            raise ConnectionDown("provider_unavailable", "The simulated network is unavailable.")
        if self._scenario == "credentials_refused":
            raise ConfigurationError(
                "credentials_refused", "The simulated network refused the credentials."
            )
        if self._scenario == "throttled":
            raise ThrottledError(
                "throttled", "The simulated network asks to slow down.", retry_after=1.0
            )

    def _pace(self) -> None:
        if not self._throttle:
            return
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self._throttle:
            raise ThrottledError(
                "throttled",
                f"The simulated provider takes {self._throttle:g} messages a second.",
                retry_after=1.0,
            )
        self._recent.append(now)

    def _reports(self, external_id: str, steps: tuple[Step, ...]) -> list[RawReport]:
        delay = self._deps.receipt_delay_seconds
        now = self._deps.clock.now()
        return [
            RawReport(
                dedupe_key=f"{external_id}:{step.event or step.status.value}",
                payload=report_payload(external_id, step, now + timedelta(seconds=delay * index)),
                due_in_seconds=delay * index,
            )
            for index, step in enumerate(steps, start=1)
        ]

    async def _keep_email(self, message: OutboundMessage, external_id: str) -> None:
        now = self._deps.clock.now()
        kept = SandboxEmail(
            id=external_id,
            message_id=message.id,
            account_id=message.account_id,
            environment=message.environment.value,
            mime=render_outbound_email(message, date=now),
            created_at=now,
        )

        async def keep(session: AsyncSession) -> None:
            session.add(kept)

        await self._deps.writer.submit(keep)


def simulated_id() -> str:
    """The simulator's id for a message it took: ``sbx.`` and 24 hex digits, the
    first 12 the time in milliseconds, the rest random. Time-ordered ids are added
    at the end of the indexes they are kept in (the provider's ids, the inbox's
    dedupe keys), a page or two per commit, where random ones landed each on a page
    of its own, all of which the commit then wrote."""
    return f"sbx.{time.time_ns() // 1_000_000:012x}{random_bytes(6).hex()}"


def report_payload(external_id: str, step: Step, at: datetime) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": external_id,
        "status": step.status.value,
        "at": at.isoformat(),
    }
    if step.error_code is not None:
        payload["error"] = {"code": step.error_code, "message": step.error_message}
    if step.event is not None:
        payload["event"] = step.event
    return payload
