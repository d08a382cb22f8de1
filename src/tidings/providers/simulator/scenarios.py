"""The sandbox's magic recipients (spec section 12) and what each one does.

A scenario says how the simulated provider answers a submission and which
reports follow an accepted one, in order. It depends on the recipient only; the
simulator stores every report a scenario owes in the inbox when it accepts the
message, each due a little later, so nothing is owed in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tidings.messages.status import Status

REFUSED = "+15550000001"
UNDELIVERED = "+15550000002"
NEVER_READ = "+15550000003"
FLAKY = "+15550000004"
OPTED_OUT = "+15550000005"
NEVER_WROTE_IN = "+15550000006"
MAGIC_NUMBERS = frozenset({REFUSED, UNDELIVERED, NEVER_READ, FLAKY, OPTED_OUT, NEVER_WROTE_IN})

HARD_BOUNCE = "hard-bounce@sandbox.test"
SOFT_BOUNCE = "soft-bounce@sandbox.test"
COMPLAINT = "complaint@sandbox.test"
ENGAGED = "engaged@sandbox.test"


@dataclass(frozen=True, slots=True)
class Step:
    """One report the simulated provider sends after accepting a message."""

    status: Status
    error_code: str | None = None
    error_message: str | None = None
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    refusal: tuple[str, str] | None = None
    unavailable_attempts: int = 0
    unavailable_code: str = "provider_unavailable"
    steps: tuple[Step, ...] = field(default_factory=tuple)
    window_open: bool = True


_DELIVERED = Step(Status.DELIVERED)
_READ = Step(Status.READ)


def phone_scenario(channel: str, number: str) -> Scenario:
    normal = (_DELIVERED, _READ) if channel == "whatsapp" else (_DELIVERED,)
    if number == REFUSED:
        return Scenario(
            refusal=("provider_rejected", "The simulated provider refused the message.")
        )
    if number == UNDELIVERED:
        return Scenario(
            steps=(Step(Status.UNDELIVERED, "undeliverable", "The handset could not be reached."),)
        )
    if number == NEVER_READ:
        return Scenario(steps=(_DELIVERED,))
    if number == FLAKY:
        return Scenario(unavailable_attempts=2, steps=normal)
    if number == NEVER_WROTE_IN:
        return Scenario(steps=normal, window_open=False)
    return Scenario(steps=normal)


def email_scenario(address: str) -> Scenario:
    address = address.lower()
    if address == HARD_BOUNCE:
        return Scenario(
            steps=(
                Step(
                    Status.UNDELIVERED,
                    "bounced",
                    "550 5.1.1 The email account that you tried to reach does not exist.",
                    event="bounced",
                ),
            )
        )
    if address == SOFT_BOUNCE:
        return Scenario(
            unavailable_attempts=1, unavailable_code="mailbox_full", steps=(_DELIVERED,)
        )
    if address == COMPLAINT:
        return Scenario(steps=(_DELIVERED, Step(Status.DELIVERED, event="complained")))
    if address == ENGAGED:
        return Scenario(
            steps=(
                _DELIVERED,
                Step(Status.DELIVERED, event="opened"),
                Step(Status.DELIVERED, event="clicked"),
            )
        )
    return Scenario(steps=(_DELIVERED,))


def scenario_for(channel: str, recipient: str) -> Scenario:
    if channel == "email":
        return email_scenario(recipient)
    return phone_scenario(channel, recipient)
