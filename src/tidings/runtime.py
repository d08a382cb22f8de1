"""The background side of one process: delivery, the inbox, webhooks, sweeps.

``tidings serve`` (embedded mode) and ``tidings worker`` start it; ``tidings
serve --no-dispatch`` keeps only what answering requests needs (the provider
directory for routing questions, the inbox for providers' webhooks, and waiters
told of verdicts by the verdict feed on PostgreSQL). Every loop runs under a
:class:`~tidings.supervision.Supervisor`: one that dies is logged and restarted,
and ``/readyz`` reports it meanwhile.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.bulk.progress import run_completion_sweep
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.key_ring import KeyRing
from tidings.db.group_commit import GroupCommitter
from tidings.db.local_bus import ApiEnd, DeliveryEnd, RelayedWaiters, bus_address
from tidings.db.notify import (
    MESSAGES,
    REPORTS,
    WEBHOOKS,
    Notifier,
    WorkNotifier,
    channel_name,
    postgres_dsn,
)
from tidings.db.writer_lock import writer_lock_for
from tidings.domains.wiring import EmailRuntime
from tidings.housekeeping import run_housekeeping
from tidings.inbound.read_marks import ReadMarks
from tidings.messages.dispatcher import Dispatcher, Lease
from tidings.messages.inbound import InboundProcessor
from tidings.messages.models import Message
from tidings.messages.precedence import SendPrecedence
from tidings.messages.verdict_feed import VerdictFeed
from tidings.messages.waiters import VerdictWaiters
from tidings.providers.base import ProviderDeps
from tidings.providers.circuit import CircuitBreaker
from tidings.providers.directory import ProviderDirectory
from tidings.providers.inbox import Inbox, InboxProcessor
from tidings.providers.metrics import ProviderMetrics
from tidings.providers.registry import KindRegistry, default_kinds
from tidings.providers.service import ProviderService
from tidings.receipt_timeouts import run_receipt_timeouts
from tidings.settings import Settings
from tidings.supervision import Supervisor
from tidings.templates.catalog import TemplateSync
from tidings.templates.review import TemplateReviewer
from tidings.webhooks.dispatcher import WebhookDispatcher
from tidings.webhooks.fanout import Fanout

log = logging.getLogger("tidings.runtime")


class DeliveryRuntime:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        notifier: WorkNotifier,
        key_ring: KeyRing,
        kinds: KindRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sessions = sessions
        self.waiters = VerdictWaiters()
        # PostgreSQL: verdicts recorded by any process are pushed to the waiters here.
        dsn = postgres_dsn(settings)
        self.verdict_feed: VerdictFeed | ApiEnd | None = (
            VerdictFeed(
                dsn=dsn,
                channel=channel_name("verdicts", settings),
                sessions=sessions,
                waiters=self.waiters,
                # Verdicts arrive by push; the requests' own reads are the safety net.
                poll_seconds=settings.send_wait_poll_seconds,
            )
            if dsn is not None
            else None
        )
        self.notifier: Notifier = notifier
        # SQLite with the delivery side in a process of its own: the local bus does
        # what NOTIFY does on PostgreSQL, both ways (tidings.db.local_bus).
        address = bus_address(settings.effective_database_url)
        if settings.delivery_process and address is not None:
            if settings.dispatch:
                delivery_end = DeliveryEnd(address)
                self.waiters = RelayedWaiters(delivery_end)
                self.notifier = delivery_end
            else:
                api_end = ApiEnd(address, self.waiters, settings.send_wait_poll_seconds)
                self.verdict_feed = self.notifier = api_end
        self.writer = GroupCommitter(
            sessions, writer_lock=writer_lock_for(settings.effective_database_url)
        )
        self.supervisor = Supervisor()
        self.metrics = ProviderMetrics()
        self.inbound = InboundProcessor(self.writer, clock)
        self.inbox = Inbox(self.writer, clock, on_stored=self._reports_stored)
        # Sending domains, DKIM and VERP for the smtp kind; the bounce listener.
        self.email = EmailRuntime(settings, sessions, clock, key_ring=key_ring, inbox=self.inbox)
        deps = ProviderDeps(
            clock=clock,
            writer=self.writer,
            inbox=self.inbox,
            receipt_delay_seconds=settings.sandbox.receipt_delay_seconds,
            throttle_per_second=settings.sandbox.throttle_per_second,
            extras=self.email.provider_extras(),
        )
        breakers = settings.providers

        def breaker() -> CircuitBreaker:
            return CircuitBreaker(
                failure_threshold=breakers.circuit_failures,
                window_seconds=breakers.circuit_window_seconds,
                open_seconds=breakers.circuit_open_seconds,
            )

        self.providers = ProviderDirectory(
            sessions=sessions,
            writer=self.writer,
            kinds=kinds or default_kinds(),
            deps=deps,
            key_ring=key_ring,
            breaker=breaker,
            retire_grace_seconds=breakers.retire_grace_seconds,
        )
        self.metrics.watch_circuits(self.providers.circuits)
        self.provider_service = ProviderService(
            sessions=sessions,
            writer=self.writer,
            kinds=self.providers.kinds,
            key_ring=key_ring,
            clock=clock,
            deps=deps,
            on_change=self._provider_changed,
        )
        # Production templates are the WhatsApp Business account's (templates.catalog).
        # Blue ticks for what the chat box shows (whatsapp_cloud's read marks).
        self.read_marks = ReadMarks(self.providers, deps)
        self.template_sync = TemplateSync(
            sessions=sessions,
            writer=self.writer,
            clock=clock,
            kinds=self.providers.kinds,
            deps=deps,
            key_ring=key_ring,
            interval=settings.providers.template_sync_seconds,
            on_change=self.wake,
        )
        self.inbox_processor = InboxProcessor(
            self.writer,
            clock,
            sources=self.providers.source,
            unmatched_wait_seconds=breakers.unmatched_wait_seconds,
            poll_interval_seconds=breakers.inbox_poll_seconds,
            # Applied reports write status changes and their outbox rows: the webhook
            # fan-out looks (the dispatcher has nothing new to claim).
            on_committed=self._reports_applied,
            # Receipts stored right after their submissions' answers find their refs.
            verdicts_recorded=lambda: self.dispatcher.verdicts_recorded(),
        )
        self.precedence = SendPrecedence(
            enabled=settings.delivery.sends_first,
            interval_seconds=settings.delivery.sends_first_pause_seconds,
        )
        self.dispatcher = Dispatcher(
            writer=self.writer,
            clock=clock,
            settings=settings.delivery,
            providers=self.providers,
            waiters=self.waiters,
            verdict_channel=(
                self.verdict_feed.channel if isinstance(self.verdict_feed, VerdictFeed) else None
            ),
            bulk=settings.bulk,
            metrics=self.metrics,
            on_reports=self._reports_stored,
            # PostgreSQL: claims in transactions of their own (see messages/queue.py).
            claim_sessions=sessions if dsn is not None else None,
            precedence=self.precedence,
        )
        self.webhook_dispatcher = WebhookDispatcher(
            writer=self.writer, clock=clock, settings=settings.webhooks, secret_box=key_ring
        )
        self.webhook_fanout = Fanout(
            writer=self.writer,
            clock=clock,
            settings=settings.webhooks,
            on_deliveries=self.webhook_dispatcher.wake,
            sessions=sessions,
        )
        self.template_reviewer = TemplateReviewer(
            sessions,
            self.writer,
            clock,
            interval=settings.sandbox.recovery_interval_seconds,
            on_change=self.wake,
        )
        self.dispatching = False

    def _provider_changed(
        self, provider_id: str, account_id: str, environment: Environment, channel: str
    ) -> None:
        self.providers.changed(account_id, environment, channel)
        self.providers.forget_health(provider_id)
        self.template_sync.changed(provider_id)

    def _reports_stored(self, due_in_seconds: float) -> None:
        if self.dispatching:
            self.inbox_processor.stored(due_in_seconds)
        else:
            # Another process applies them: tell it.
            self.notifier.notify(REPORTS)

    def wake(self) -> None:
        """New work was committed: this process's dispatcher, and others', look now."""
        if self.dispatching:
            self.dispatcher.wake()
            self.webhook_fanout.wake()
        self.notifier.notify(MESSAGES)

    def _reports_applied(self) -> None:
        if self.dispatching:
            self.webhook_fanout.wake()
        # Their outbox rows are there for any worker's fan-out (not a claim for nothing).
        self.notifier.notify(WEBHOOKS)

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

    def _woken(self, topic: str) -> None:
        """Another process committed work of ``topic`` (:mod:`tidings.db.notify`)."""
        if topic == MESSAGES:
            self.dispatcher.wake()
        elif topic == REPORTS:
            self.inbox_processor.stored(0.0)
        elif topic == WEBHOOKS:
            self.webhook_fanout.wake()

    async def start(self, *, dispatch: bool, serving: bool = True) -> None:
        """Start the loops; ``serving`` is False where no request waits (``tidings worker``)."""
        self.dispatching = dispatch
        if self.verdict_feed is not None and serving:
            await self.verdict_feed.start()
        if not dispatch:
            return
        await self.notifier.listen(self._woken)
        start = self.supervisor.start
        start("dispatcher", self.dispatcher.run)
        start("inbox", self.inbox_processor.run)
        start("housekeeping", lambda: run_housekeeping(self.writer, self._clock))
        start("template-review", self.template_reviewer.run)
        start("template-sync", self.template_sync.run)
        start(
            "batch-completion",
            lambda: run_completion_sweep(self.writer, self._sessions, self._clock),
        )
        start(
            "receipt-timeouts",
            lambda: run_receipt_timeouts(
                self.writer, self._sessions, self._clock, self.providers.kinds
            ),
        )
        start("webhook-fanout", self.webhook_fanout.run)
        start("webhook-dispatcher", self.webhook_dispatcher.run)
        # SMPP binds receive receipts and contacts' messages even when nothing is sent.
        start("persistent-providers", self.providers.run_persistent)
        self.email.start(start)

    def down(self) -> dict[str, str]:
        """Background tasks that are not running now (for /readyz)."""
        return self.supervisor.down() if self.dispatching else {}

    async def stop(self) -> None:
        if self.dispatching:
            stop = self.supervisor.stop
            await stop("webhook-fanout", ask=self.webhook_fanout.stop, grace=5.0)
            await stop("webhook-dispatcher", ask=self.webhook_dispatcher.stop, grace=5.0)
            await stop(
                "dispatcher",
                ask=self.dispatcher.stop,
                grace=self.settings.delivery.shutdown_grace_seconds + 5.0,
            )
            await stop("inbox", ask=self.inbox_processor.stop, grace=5.0)
            await self.supervisor.stop_all()
        await self.writer.close()
        if self.verdict_feed is not None and self.verdict_feed is not self.notifier:
            await self.verdict_feed.close()
        await self.notifier.close()
        await self.read_marks.close()
        await self.providers.close()
        await self.email.close()
