"""Every provider kind, in one place: :class:`KindSpec` says what a kind is.

A kind names its channels, its typed config (a pydantic model whose ``SecretStr``
fields are its secrets), how to build a live provider from that config, how to
read what it stored in the inbox, and what it can do without being built (test
numbers; whether it simulates contacts that wrote in). Adding a kind is one folder
under ``providers/`` and one line in :func:`default_kinds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from tidings.core.environments import Environment
from tidings.providers.base import Provider, ProviderDeps, ReportParser
from tidings.providers.webhook_adapter import WebhookAdapter

CHANNELS = ("whatsapp", "sms", "email")
MASK = "********"


class KindConfig(BaseModel):
    """Base of every kind's config: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    id: str
    account_id: str | None
    environment: Environment
    channel: str
    kind: str
    name: str


Builder = Callable[[ProviderIdentity, Any, ProviderDeps], Provider]


def _no_numbers(channel: str) -> frozenset[str]:
    return frozenset()


def _unlimited(config: Any) -> None:
    return None


def _no_receipt_timeout(stored: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class KindSpec:
    kind: str
    channels: frozenset[str]
    config: type[KindConfig]
    build: Builder
    parse_report: ReportParser
    summary: str
    # Numbers accepted beyond the numbering plan, per channel (the simulator's magic ones).
    test_numbers: Callable[[str], frozenset[str]] = _no_numbers
    # For simulated kinds: whether a contact counts as having written in recently.
    simulated_inbound: Callable[[str, str], bool] | None = None
    # Whether the kind takes inbound webhooks at /inbound/<kind>/<providerId>.
    inbound_path: bool = False
    # Messages a second its config agrees with the network (shared by every process);
    # None: unpaced.
    rate: Callable[[Any], float | None] = _unlimited
    # Submissions in flight at once in one process (an SMPP window times its binds, an
    # SMTP pool's connections); None: only the channel's concurrency applies.
    concurrency: Callable[[Any], int | None] = _unlimited
    # Kinds that receive on their own connection (SMPP binds) are started with the
    # process, not at their first message.
    persistent: bool = False
    # Kinds with an HTTP webhook: how the inbound edge verifies and reads it.
    webhook: WebhookAdapter | None = None
    # Kinds asked for delivery receipts: how long after ``sent`` a message with no
    # receipt says so (``receipt_timeout`` event), read from the provider's stored
    # public config (camelCase, no secrets); None: no receipt is awaited.
    receipt_timeout: Callable[[dict[str, Any]], float | None] = _no_receipt_timeout

    @property
    def secret_fields(self) -> frozenset[str]:
        """The wire (camelCase) names of the config's secrets."""
        return frozenset(
            (info.alias or name)
            for name, info in self.config.model_fields.items()
            if _is_secret(info.annotation)
        )


def _is_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return SecretStr in getattr(annotation, "__args__", ())


class ConfigProblem(ValueError):
    """A config that does not validate; ``errors`` name the fields (``config.<field>``)."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


def validation_problem(error: ValidationError, prefix: str = "config") -> ConfigProblem:
    errors = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        errors.append(
            {
                "field": f"{prefix}.{path}" if path else prefix,
                "code": "invalid_value" if item["type"] != "missing" else "missing",
                "message": item["msg"],
            }
        )
    return ConfigProblem("The provider's config is not valid.", errors)


class KindRegistry:
    """The kinds an operator can configure."""

    def __init__(self, kinds: Iterable[KindSpec] = ()) -> None:
        self._kinds: dict[str, KindSpec] = {}
        for spec in kinds:
            self.register(spec)

    def register(self, spec: KindSpec) -> None:
        self._kinds[spec.kind] = spec

    def get(self, kind: str) -> KindSpec | None:
        return self._kinds.get(kind)

    def names(self, channel: str | None = None) -> list[str]:
        return sorted(
            name
            for name, spec in self._kinds.items()
            if channel is None or channel in spec.channels
        )

    def spec_for(self, channel: str, kind: str) -> KindSpec:
        spec = self._kinds.get(kind)
        if spec is None or channel not in spec.channels:
            known = ", ".join(self.names(channel)) or "none"
            raise ConfigProblem(
                f"There is no {channel} provider kind {kind!r}.",
                [{"field": "kind", "code": "unknown_kind", "message": f"known: {known}"}],
            )
        return spec


def parse_config(spec: KindSpec, raw: Mapping[str, Any]) -> Any:
    try:
        return spec.config.model_validate(dict(raw))
    except ValidationError as error:
        raise validation_problem(error) from None


def split_config(spec: KindSpec, config: KindConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The config as stored: its public part, and its secrets in clear (to be sealed)."""
    dumped = config.model_dump(mode="python", by_alias=True)
    public: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, value in dumped.items():
        if name in spec.secret_fields:
            if value is not None:
                secrets[name] = value.get_secret_value()
        else:
            public[name] = _jsonable(value)
    return public, secrets


def _jsonable(value: Any) -> Any:
    return value if _plain(value) else str(value)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def shown_config(
    spec: KindSpec, public: Mapping[str, Any], secret_names: Iterable[str]
) -> dict[str, Any]:
    """The config as answered: secrets that are set replaced by the mask."""
    shown = dict(public)
    for name in secret_names:
        shown[name] = MASK
    return shown


# How long ago a simulated contact "wrote in", which keeps the WhatsApp window open.
SIMULATED_INBOUND_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class Capabilities:
    """What the configured providers of one channel allow, without building any."""

    channel: str
    kinds: tuple[str, ...]
    now: Callable[[], datetime]
    test_numbers: frozenset[str] = frozenset()
    simulated_inbound: Callable[[str], bool] | None = field(default=None)

    async def last_inbound_at(self, contact: str) -> datetime | None:
        """When the contact last wrote in as far as a simulated network pretends (the
        sandbox's contacts all wrote in recently); None for real networks, whose
        contacts' messages are in the database."""
        if self.simulated_inbound is None or not self.simulated_inbound(contact):
            return None
        return self.now() - SIMULATED_INBOUND_AGE


def default_kinds() -> KindRegistry:
    from tidings.providers.simulator import SIMULATOR
    from tidings.providers.smpp import SMPP
    from tidings.providers.smtp import SMTP
    from tidings.providers.whatsapp_cloud import WHATSAPP_CLOUD

    return KindRegistry([SIMULATOR, SMPP, SMTP, WHATSAPP_CLOUD])
