"""Templates kept in step with a WhatsApp Business account (review finding P11).

In production the templates are the business account's: Meta reviews them, not
Tidings. A provider kind that can read and write that catalog implements
:class:`TemplateCatalog` (``whatsapp_cloud`` does). What this module does with it:

- :func:`sync_templates` writes the account's templates (every page, every
  status) into ``whatsapp_templates``: new ones are added, changed ones updated;
  each addition or status change fires ``template.updated``. Templates that only
  exist here are left alone (a sync never deletes what it did not make).
- :func:`apply_updates` applies Meta's ``message_template_status_update``
  webhooks (stored in the same transaction as their ``template.updated``).
- :class:`TemplateSync` runs the sync for every production provider with a
  catalog: when one is added, changed or checked (the provider service's change
  hook), and every ``providers.template_sync_seconds``.
- :func:`submit_template` hands a template created with ``POST
  /api/v4/notifications/whatsapp/templates`` in production to the account's
  catalog; it stays PENDING until Meta's decision arrives (webhook or sync).

Meta's statuses map onto ours: ``IN_APPEAL`` is still PENDING, ``FLAGGED`` and
``REINSTATED`` are APPROVED (still sendable), ``LIMIT_EXCEEDED`` is PAUSED,
``PENDING_DELETION``, ``DELETED`` and ``ARCHIVED`` are DISABLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.core.key_ring import KeyRing, SecretUnavailable
from tidings.db.group_commit import GroupCommitter
from tidings.providers.base import ProviderDeps
from tidings.providers.errors import DeliveryError
from tidings.providers.models import ProviderRow
from tidings.providers.registry import ConfigProblem, KindRegistry, ProviderIdentity, parse_config
from tidings.templates.models import Template
from tidings.templates.repository import TemplateRepository
from tidings.templates.review import template_event
from tidings.templates.shape import parameter_format_of

log = logging.getLogger("tidings.templates.catalog")

OURS = frozenset({"APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"})
META_STATUS = {
    "IN_APPEAL": "PENDING",
    "FLAGGED": "APPROVED",
    "REINSTATED": "APPROVED",
    "UNFLAGGED": "APPROVED",
    "LIMIT_EXCEEDED": "PAUSED",
    "PENDING_DELETION": "DISABLED",
    "DELETED": "DISABLED",
    "ARCHIVED": "DISABLED",
}
# Meta's snake_case keys that the API spells in camelCase.
_CAMEL = {"phone_number": "phoneNumber", "otp_type": "otpType"}
_SNAKE = {value: key for key, value in _CAMEL.items()}
_COMPONENT_KEYS = ("type", "format", "text", "buttons", "example")
_BUTTON_KEYS = ("type", "text", "url", "phone_number", "otp_type", "example")


@runtime_checkable
class TemplateCatalog(Protocol):
    """A provider that can read and write its business account's templates."""

    async def templates(self) -> list[dict[str, Any]]:
        """Every template of the account, every status (Graph's shape)."""
        ...

    async def submit_template(self, template: dict[str, Any]) -> dict[str, Any]:
        """Submit a template for review (Graph's shape); the network's answer."""
        ...


def our_status(meta: str) -> str | None:
    upper = meta.upper()
    if upper in OURS:
        return upper
    return META_STATUS.get(upper)


def _button_in(button: dict[str, Any]) -> dict[str, Any]:
    return {
        _CAMEL.get(key, key): button[key] for key in _BUTTON_KEYS if button.get(key) is not None
    }


def components_from_graph(components: Iterable[Any]) -> list[dict[str, Any]]:
    """Graph's components as the API keeps them (camelCase keys, known fields)."""
    kept: list[dict[str, Any]] = []
    for component in components:
        if not isinstance(component, dict):
            continue
        item = {key: component[key] for key in _COMPONENT_KEYS if component.get(key) is not None}
        item["type"] = str(item.get("type", "")).upper()
        if isinstance(item.get("buttons"), list):
            item["buttons"] = [_button_in(b) for b in item["buttons"] if isinstance(b, dict)]
        kept.append(item)
    return kept


def components_to_graph(components: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our components as Graph takes them when a template is submitted."""
    sent: list[dict[str, Any]] = []
    for component in components:
        item = dict(component)
        if isinstance(item.get("buttons"), list):
            item["buttons"] = [
                {_SNAKE.get(key, key): value for key, value in button.items()}
                for button in item["buttons"]
            ]
        sent.append(item)
    return sent


@dataclass(frozen=True, slots=True)
class Decision:
    """What Meta says about one template (from a sync or a status webhook)."""

    name: str
    language: str
    status: str
    reason: str | None = None
    category: str | None = None
    components: list[dict[str, Any]] | None = None
    parameter_format: str | None = None


def decision_from_graph(item: dict[str, Any]) -> Decision | None:
    name, language, status = item.get("name"), item.get("language"), item.get("status")
    if not (isinstance(name, str) and isinstance(language, str) and isinstance(status, str)):
        return None
    ours = our_status(status)
    if ours is None:
        return None
    components = components_from_graph(item.get("components") or [])
    reason = item.get("rejected_reason")
    declared = str(item.get("parameter_format") or "").upper()
    return Decision(
        name=name,
        language=language,
        status=ours,
        reason=str(reason)[:64] if reason and reason != "NONE" and ours == "REJECTED" else None,
        category=str(item["category"])[:16] if item.get("category") else None,
        components=components,
        parameter_format=declared if declared in ("NAMED", "POSITIONAL") else None,
    )


async def _record(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    decision: Decision,
    now: datetime,
) -> bool:
    """Apply one decision in this transaction; whether anything changed."""
    repo = TemplateRepository(session)
    template = await repo.get_by_name(account_id, environment, decision.name, decision.language)
    if template is None:
        if decision.components is None:
            # A status change of a template we never saw: the next sync brings it whole.
            return False
        template = Template(
            id=new_id("tpl"),
            account_id=account_id,
            environment=environment.value,
            name=decision.name[:512],
            language=decision.language[:16],
            category=decision.category or "UTILITY",
            status=decision.status,
            rejected_reason=decision.reason,
            parameter_format=decision.parameter_format or parameter_format_of(decision.components),
            components=decision.components,
            review_due_at=None,
            created_at=now,
            updated_at=now,
        )
        repo.add(template)
        session.add(template_event(template, now))
        return True
    changed_status = template.status != decision.status
    values: dict[str, Any] = {}
    if changed_status or template.rejected_reason != decision.reason:
        values.update(status=decision.status, rejected_reason=decision.reason)
    if decision.category and decision.category != template.category:
        values["category"] = decision.category
    if decision.components is not None and decision.components != template.components:
        values["components"] = decision.components
        values["parameter_format"] = decision.parameter_format or parameter_format_of(
            decision.components
        )
    if not values:
        return False
    values.update(updated_at=now, review_due_at=None)
    await session.execute(
        update(Template)
        .where(Template.id == template.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for key, value in values.items():
        setattr(template, key, value)
    session.expunge(template)
    if changed_status:
        session.add(template_event(template, now))
    return True


async def sync_templates(
    session: AsyncSession,
    account_id: str,
    environment: Environment,
    items: Iterable[dict[str, Any]],
    now: datetime,
) -> int:
    """Write the business account's templates here (in this transaction); how many
    were added or changed."""
    changed = 0
    for item in items:
        decision = decision_from_graph(item)
        if decision is not None and await _record(session, account_id, environment, decision, now):
            changed += 1
    return changed


class StatusUpdate(Protocol):
    """A template decision as a status webhook gives it (the ``whatsapp_cloud``
    kind's ``TemplateUpdate``)."""

    @property
    def name(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...


async def apply_updates(
    writer: GroupCommitter,
    account_id: str,
    environment: Environment,
    updates: Iterable[StatusUpdate],
    now: datetime,
) -> int:
    """Apply template status webhooks, committed before the caller answers; how
    many templates changed."""
    decisions = [
        Decision(
            name=u.name,
            language=u.language,
            status=status,
            reason=(u.reason or "")[:64] or None if status == "REJECTED" else None,
            category=u.category[:16] if u.category else None,
        )
        for u in updates
        if (status := our_status(u.event)) is not None
    ]
    if not decisions:
        return 0

    async def unit(session: AsyncSession) -> int:
        changed = 0
        for decision in decisions:
            if await _record(session, account_id, environment, decision, now):
                changed += 1
        return changed

    return await writer.submit(unit)


def template_for_graph(template: Template) -> dict[str, Any]:
    """A template of ours as ``POST /{waba-id}/message_templates`` takes it."""
    return {
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "parameter_format": template.parameter_format,
        "components": components_to_graph(template.components),
    }


class TemplateSync:
    """Keeps every production provider's template catalog in step (see the module
    docstring): :meth:`changed` asks for one provider now, :meth:`run` syncs them
    all every ``interval`` seconds."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        writer: GroupCommitter,
        clock: Clock,
        kinds: KindRegistry,
        deps: ProviderDeps,
        key_ring: KeyRing,
        interval: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._writer = writer
        self._clock = clock
        self._kinds = kinds
        self._deps = deps
        self._ring = key_ring
        self._interval = interval
        self._on_change = on_change
        self._asked: set[str] = set()
        self._wake = asyncio.Event()

    def changed(self, provider_id: str) -> None:
        """A provider was added, changed or checked: sync its catalog soon."""
        self._asked.add(provider_id)
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_all = loop.time()
        while True:
            self._wake.clear()
            asked, self._asked = self._asked, set()
            everything = loop.time() >= next_all
            try:
                await self.sync_all(None if everything else asked)
            except Exception:
                log.exception("the template sync failed; trying again later")
            if everything:
                next_all = loop.time() + self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_all - loop.time()))

    async def sync_all(self, only: set[str] | None = None) -> int:
        """Sync every production provider with a catalog (or only those named)."""
        async with self._sessions() as session:
            query = select(ProviderRow).where(
                ProviderRow.environment == Environment.PRODUCTION.value,
                ProviderRow.deleted_at.is_(None),
                ProviderRow.account_id.is_not(None),
            )
            if only is not None:
                if not only:
                    return 0
                query = query.where(ProviderRow.id.in_(sorted(only)))
            rows = list(await session.scalars(query))
        changed = 0
        for row in rows:
            changed += await self.sync_provider(row) or 0
        return changed

    async def submit(self, template: Template) -> bool:
        """Submit a production template to its account's catalog (see
        :func:`submit_template`)."""
        return await submit_template(self._sessions, self._kinds, self._deps, self._ring, template)

    async def sync_account(self, account_id: str) -> tuple[int, int]:
        """Sync now every production provider of one account that has a catalog
        (``POST /api/v4/notifications/whatsapp/templates/sync``): how many catalogs
        were read and how many templates changed. Raises the provider's
        :class:`~tidings.providers.errors.DeliveryError` when a catalog cannot be read."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(ProviderRow).where(
                        ProviderRow.account_id == account_id,
                        ProviderRow.environment == Environment.PRODUCTION.value,
                        ProviderRow.deleted_at.is_(None),
                    )
                )
            )
        read = changed = 0
        for row in rows:
            count = await self.sync_provider(row, quiet=False)
            if count is not None:
                read += 1
                changed += count
        return read, changed

    async def sync_provider(self, row: ProviderRow, *, quiet: bool = True) -> int | None:
        """One provider's catalog into its account's templates: how many changed, or
        None when the provider has no catalog (or, ``quiet``, could not be read)."""
        spec = self._kinds.get(row.kind)
        # Only WhatsApp providers have template catalogs: no other is built for this.
        if spec is None or row.account_id is None or row.channel != "whatsapp":
            return None
        try:
            secrets = {name: self._ring.open(sealed) for name, sealed in row.secrets.items()}
            config = parse_config(spec, {**row.config, **secrets})
        except (SecretUnavailable, ConfigProblem):
            return None
        identity = ProviderIdentity(
            row.id, row.account_id, Environment(row.environment), row.channel, row.kind, row.name
        )
        provider = spec.build(identity, config, self._deps)
        try:
            if not isinstance(provider, TemplateCatalog):
                return None
            try:
                items = await provider.templates()
            except DeliveryError as error:
                log.warning("provider %s: templates not synced (%s)", row.id, error.code)
                if quiet:
                    return None
                raise
        finally:
            await provider.close()
        account_id = row.account_id
        now = self._clock.now()

        async def unit(session: AsyncSession) -> int:
            return await sync_templates(session, account_id, Environment.PRODUCTION, items, now)

        changed = await self._writer.submit(unit)
        if changed:
            self._on_change()
        return changed


async def submit_template(
    sessions: async_sessionmaker[AsyncSession],
    kinds: KindRegistry,
    deps: ProviderDeps,
    key_ring: KeyRing,
    template: Template,
) -> bool:
    """Submit a production template to the first enabled provider of its account
    that has a catalog; False when there is none. Raises the provider's
    :class:`~tidings.providers.errors.DeliveryError` when Meta refuses it."""
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(ProviderRow)
                .where(
                    ProviderRow.account_id == template.account_id,
                    ProviderRow.environment == template.environment,
                    ProviderRow.channel == "whatsapp",
                    ProviderRow.enabled.is_(True),
                    ProviderRow.deleted_at.is_(None),
                )
                .order_by(ProviderRow.priority, ProviderRow.created_at)
            )
        )
    for row in rows:
        spec = kinds.get(row.kind)
        if spec is None:
            continue
        try:
            secrets = {name: key_ring.open(sealed) for name, sealed in row.secrets.items()}
            config = parse_config(spec, {**row.config, **secrets})
        except (SecretUnavailable, ConfigProblem):
            continue
        identity = ProviderIdentity(
            row.id, row.account_id, Environment(row.environment), row.channel, row.kind, row.name
        )
        provider = spec.build(identity, config, deps)
        try:
            if isinstance(provider, TemplateCatalog):
                await provider.submit_template(template_for_graph(template))
                return True
        finally:
            await provider.close()
    return False
