"""Blue ticks: telling the network a contact's messages were read when a chat box
shows them.

:class:`ReadMarks` is handed the inbound messages a chat box has just shown
(:mod:`tidings.widget.live`). For each provider among them it marks the newest one
read, in the background (the box never waits for the network): WhatsApp marks every
earlier message of the chat read with it. A kind that can do this implements
:class:`ReadReceipts` (``whatsapp_cloud`` does, with Graph's ``status: read``);
others are skipped. Each message is marked once per process (a bounded memory of
the ids marked); a failure is logged and forgotten, so the next showing tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from tidings.core.key_ring import SecretUnavailable
from tidings.messages.models import Message
from tidings.providers.base import ProviderDeps
from tidings.providers.directory import ProviderDirectory
from tidings.providers.errors import DeliveryError
from tidings.providers.registry import ConfigProblem, ProviderIdentity

log = logging.getLogger("tidings.inbound.read_marks")

REMEMBERED = 10_000


@runtime_checkable
class ReadReceipts(Protocol):
    async def mark_read(self, external_id: str) -> None:
        """Tell the contact their message (and the earlier ones) was read."""
        ...


class ReadMarks:
    def __init__(self, directory: ProviderDirectory, deps: ProviderDeps) -> None:
        self._directory = directory
        self._deps = deps
        self._marked: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def shown(self, messages: Iterable[Message]) -> None:
        """A chat box showed these messages: mark the newest inbound one of each
        provider read, unless it already was."""
        newest: dict[str, Message] = {}
        for message in messages:
            if (
                message.direction != "inbound"
                or message.provider_id is None
                or not message.provider_message_id
            ):
                continue
            kept = newest.get(message.provider_id)
            if kept is None or message.id > kept.id:
                newest[message.provider_id] = message
        for provider_id, message in newest.items():
            external_id = str(message.provider_message_id)
            if external_id in self._marked:
                continue
            self._remember(external_id)
            task = asyncio.create_task(self._mark(provider_id, external_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _remember(self, external_id: str) -> None:
        self._marked[external_id] = None
        while len(self._marked) > REMEMBERED:
            self._marked.popitem(last=False)

    async def _mark(self, provider_id: str, external_id: str) -> None:
        try:
            found = await self._directory.config_of(provider_id)
        except (SecretUnavailable, ConfigProblem):
            found = None
        spec = None if found is None else self._directory.kinds.get(found[0].kind)
        if found is None or spec is None:
            return
        route, config = found
        identity = ProviderIdentity(
            route.id, route.account_id, route.environment, route.channel, route.kind, route.name
        )
        provider = spec.build(identity, config, self._deps)
        try:
            if isinstance(provider, ReadReceipts):
                await provider.mark_read(external_id)
        except DeliveryError as error:
            self._marked.pop(external_id, None)
            log.warning("provider %s: a read mark was refused (%s)", provider_id, error.code)
        finally:
            await provider.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
