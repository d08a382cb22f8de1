"""The ``smpp`` kind's row of the providers contract (tests/providers/test_contract.py):
each scenario acted by a fake SMSC of :mod:`tests.fakes.smsc` on a real socket, and
a receipt as the provider stores a ``deliver_sm`` in the inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

from tests.fakes.smsc import (
    PASSWORD,
    SYSTEM_ID,
    BadCredentialsSMSC,
    BlackHoleSMSC,
    DeliveryReceiptSMSC,
    ErrorOnSubmitSMSC,
    FakeSMSC,
    HappySMSC,
    QueueFullSMSC,
    ThrottlingSMSC,
)
from tidings.messages.status import Status
from tidings.providers.smpp import pdus
from tidings.providers.smpp.pdus import ShortMessage
from tidings.providers.smpp.receipts import stored_payload

ORDINARY = "+393331234567"

# The message_state a receipt of each status carries.
STATES = {Status.SENT: 6, Status.DELIVERED: 2, Status.UNDELIVERED: 5}


def config(smsc: FakeSMSC, **values: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": smsc.port,
        "systemId": SYSTEM_ID,
        "password": PASSWORD,
        "defaultSender": "Tidings",
        **values,
    }


def smpp_report(external_id: str, status: Status, at: datetime) -> dict[str, Any]:
    """A receipt (TLVs only) as the provider stores the deliver_sm carrying it."""
    receipt = ShortMessage(
        source=ORDINARY.removeprefix("+"),
        source_ton=1,
        destination="Tidings",
        esm_class=pdus.ESM_DELIVERY_RECEIPT,
        tlvs={
            pdus.TLV_RECEIPTED_MESSAGE_ID: external_id.encode() + b"\x00",
            pdus.TLV_MESSAGE_STATE: bytes((STATES[status],)),
        },
    )
    return stored_payload(receipt, received_at=at, id_base="same")


@asynccontextmanager
async def provoke_smpp(scenario: str) -> AsyncIterator[Any]:
    from tests.providers.test_contract import Provocation

    async with AsyncExitStack() as stack:

        async def running(smsc: FakeSMSC) -> FakeSMSC:
            return await stack.enter_async_context(smsc)

        if scenario == "success":
            yield Provocation(config(await running(DeliveryReceiptSMSC("both"))), ORDINARY)
        elif scenario == "quiet":
            # Receipts are kept for a later bind (as for an ESME that went away): none
            # during one process, all of them to the next.
            quiet = await running(HappySMSC(receipts="both", hold_receipts=True))
            yield Provocation(config(quiet), ORDINARY)
        elif scenario == "retryable":
            flaky = await running(QueueFullSMSC(refusals=2, receipts="both"))
            yield Provocation(config(flaky), ORDINARY)
        elif scenario == "permanent":
            refusing = await running(ErrorOnSubmitSMSC({ORDINARY.removeprefix("+"): 0x0B}))
            yield Provocation(config(refusing), ORDINARY)
        else:
            good = config(await running(DeliveryReceiptSMSC("both")))
            if scenario == "throttled":
                bad = config(await running(ThrottlingSMSC(per_second=0)), throttleWaitSeconds=0)
            elif scenario == "credentials_refused":
                bad = config(await running(BadCredentialsSMSC()))
            elif scenario == "black_hole":
                bad = config(await running(BlackHoleSMSC()))
            else:
                raise ValueError(scenario)
            yield Provocation(bad, ORDINARY, good)
