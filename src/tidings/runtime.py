"""The background side of one process: delivery, simulated providers, inbound.

``tidings serve`` (embedded mode) and ``tidings worker`` start it; ``tidings
serve --no-dispatch`` keeps only what answering requests needs (the provider
directory for validation, and waiters that fall back to reading the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.bulk.progress import run_completion_sweep
from tidings.channels.base import Provider
from tidings.channels.configs import config_lookup
from tidings.channels.registry import CHANNELS, ProviderDirectory, ProviderRegistry
from tidings.core.clock import Clock
from tidings.core.key_ring import KeyRing
from tidings.db.group_commit import GroupCommitter
from tidings.db.notify import WorkNotifier
from tidings.housekeeping import run_housekeeping
from tidings.messages.dispatcher import Dispatcher, Lease
from tidings.messages.inbound import InboundProcessor
from tidings.messages.models import Message
from tidings.messages.waiters import VerdictWaiters
from tidings.sandbox.network import SandboxNetwork
from tidings.sandbox.providers import SandboxProvider
from tidings.sandbox.recovery import SandboxRecovery
from tidings.settings import Settings
from tidings.templates.review import TemplateReviewer
from tidings.webhooks.dispatcher import WebhookDispatcher
from tidings.webhooks.fanout import Fanout

log = logging.getLogger("tidings.runtime")


def build_registry(
    network: SandboxNetwork, clock: Clock, writer: GroupCommitter
) -> ProviderRegistry:
    """Every provider kind an operator can configure for production."""
    registry = ProviderRegistry()
    for channel in CHANNELS:

        def simulator(_config: object, channel: str = channel) -> Provider:
            return SandboxProvider(channel, network=network, clock=clock, writer=writer)

        registry.register(channel, "simulator", simulator)
    return registry


class DeliveryRuntime:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        notifier: WorkNotifier,
        secret_box: KeyRing,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sessions = sessions
        self.waiters = VerdictWaiters()
        self.writer = GroupCommitter(sessions)
        self.notifier = notifier
        self.inbound = InboundProcessor(self.writer, clock)
        self.network = SandboxNetwork(
            self.inbound, clock, delay_seconds=settings.sandbox.receipt_delay_seconds
        )
        sandbox: dict[str, Provider] = {
            channel: SandboxProvider(
                channel,
                network=self.network,
                clock=clock,
                writer=self.writer,
                throttle_per_second=settings.sandbox.throttle_per_second,
            )
            for channel in CHANNELS
        }
        self.registry = build_registry(self.network, clock, self.writer)
        self.providers = ProviderDirectory(
            sandbox=sandbox, registry=self.registry, production_config=config_lookup(sessions)
        )
        self.dispatcher = Dispatcher(
            writer=self.writer,
            clock=clock,
            settings=settings.delivery,
            providers=self.providers,
            waiters=self.waiters,
            bulk=settings.bulk,
        )
        self.recovery = SandboxRecovery(
            sessions, clock, self.network, interval=settings.sandbox.recovery_interval_seconds
        )
        self.webhook_dispatcher = WebhookDispatcher(
            writer=self.writer, clock=clock, settings=settings.webhooks, secret_box=secret_box
        )
        self.webhook_fanout = Fanout(
            writer=self.writer,
            clock=clock,
            settings=settings.webhooks,
            on_deliveries=self.webhook_dispatcher.wake,
        )
        self.template_reviewer = TemplateReviewer(
            sessions,
            self.writer,
            clock,
            interval=settings.sandbox.recovery_interval_seconds,
            on_change=self.wake,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._webhook_tasks: list[asyncio.Task[None]] = []
        self.dispatching = False

    def wake(self) -> None:
        """New work was committed: this process's dispatcher, and others', look now."""
        if self.dispatching:
            self.dispatcher.wake()
            self.webhook_fanout.wake()
        self.notifier.notify()

    def webhooks_wake(self) -> None:
        """Webhook deliveries were written: the webhook dispatcher looks now."""
        if self.dispatching:
            self.webhook_dispatcher.wake()

    def reserve(self, channel: str) -> Lease | None:
        """A dispatcher slot for a message about to be stored (see Dispatcher.reserve)."""
        return self.dispatcher.reserve(channel) if self.dispatching else None

    def release(self, channel: str, lease: Lease | None) -> None:
        if lease is not None:
            self.dispatcher.release_reservation(channel)

    def adopt(self, message: Message) -> None:
        self.dispatcher.adopt(message)

    async def start(self, *, dispatch: bool) -> None:
        self.dispatching = dispatch
        if not dispatch:
            return
        await self.notifier.listen(self.dispatcher.wake)
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.network.run(), name="sandbox-network"),
            asyncio.create_task(self.recovery.run(), name="sandbox-recovery"),
            asyncio.create_task(run_housekeeping(self.writer, self._clock), name="housekeeping"),
            asyncio.create_task(self.template_reviewer.run(), name="template-review"),
            asyncio.create_task(
                run_completion_sweep(self.writer, self._sessions, self._clock),
                name="batch-completion",
            ),
        ]
        self._webhook_tasks = [
            asyncio.create_task(self.webhook_fanout.run(), name="webhook-fanout"),
            asyncio.create_task(self.webhook_dispatcher.run(), name="webhook-dispatcher"),
        ]

    async def stop(self) -> None:
        if self._webhook_tasks:
            await self.webhook_fanout.stop()
            await self.webhook_dispatcher.stop()
            for task in self._webhook_tasks:
                with contextlib.suppress(Exception):
                    await task
            self._webhook_tasks = []
        if self._tasks:
            await self.dispatcher.stop()
            dispatcher_task, *others = self._tasks
            with contextlib.suppress(Exception):
                await dispatcher_task
            for task in others:
                task.cancel()
            for task in others:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks = []
        await self.writer.close()
        await self.notifier.close()
        await self.providers.close()
