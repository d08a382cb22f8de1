"""What the SMPP tests share: a provider built straight from a config against a
fake SMSC, with an in-memory inbox that records what was stored and when."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from tests.fakes.smsc import PASSWORD, SYSTEM_ID, FakeSMSC
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.db.group_commit import GroupCommitter
from tidings.providers.base import OutboundMessage, ProviderDeps, RawReport
from tidings.providers.registry import ProviderIdentity
from tidings.providers.smpp import SmppConfig, SmppProvider
from tidings.providers.smpp.session import BindKeeper

BindKeeper.RECONNECT_MIN_SECONDS = 0.05


class MemoryInbox:
    """Stores reports in a list; ``fail`` makes the next stores raise."""

    def __init__(self) -> None:
        self.reports: list[RawReport] = []
        self.fail = 0

    async def store(self, provider_id: str, reports: Sequence[RawReport]) -> int:
        await asyncio.sleep(0)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the database is away")
        self.reports.extend(reports)
        return len(reports)


def config_for(smsc: FakeSMSC, **values: Any) -> SmppConfig:
    return SmppConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": smsc.port,
            "systemId": SYSTEM_ID,
            "password": PASSWORD,
            "responseTimeoutSeconds": 2,
            **values,
        }
    )


def build(smsc: FakeSMSC, **values: Any) -> tuple[SmppProvider, MemoryInbox]:
    inbox = MemoryInbox()
    deps = ProviderDeps(clock=SystemClock(), writer=cast(GroupCommitter, None), inbox=inbox)
    identity = ProviderIdentity(
        id="prv_smpp_test",
        account_id="acc_test",
        environment=Environment.PRODUCTION,
        channel="sms",
        kind="smpp",
        name="SMPP test",
    )
    return SmppProvider(identity, config_for(smsc, **values), deps), inbox


def outbound(to: str = "+393331234567", body: str = "hello", number: int = 1) -> OutboundMessage:
    return OutboundMessage(
        id=f"msg_{number}",
        account_id="acc_test",
        environment=Environment.PRODUCTION,
        channel="sms",
        to=to,
        sender="Tidings",
        body=body,
        content={},
        attempt=1,
    )


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.01)
