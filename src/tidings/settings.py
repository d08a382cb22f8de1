"""Deployment settings, read from ``TIDINGS_*`` environment variables.

Every setting is documented in the README's settings table; keep the two in step.
Nested sections use ``__`` in the variable name (``TIDINGS_RATE_LIMIT__PER_MINUTE``).
Secrets have no default written in code: the JWT signing key is either given or
generated once and kept in the data directory (see :mod:`tidings.core.secrets`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class RateLimitSettings(BaseModel):
    """Requests per window, per account (authenticated) or per client address."""

    per_minute: int = Field(default=1200, ge=1)
    anonymous_per_minute: int = Field(default=120, ge=1)
    # Opens, clicks and one-click unsubscribes (/t/), all addresses together.
    tracking_per_minute: int = Field(default=60_000, ge=1)
    window_seconds: int = Field(default=60, ge=1)


class ServerSettings(BaseModel):
    """Limits of the HTTP server on each connection (``tidings serve``)."""

    # A request's line and headers together; more answers 431.
    max_header_bytes: int = Field(default=65_536, ge=1024)
    # From a request's first byte (or the connection's opening) to its last header; 408.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # Longest silence while a request body is coming in; 408 and the connection closed.
    body_timeout_seconds: float = Field(default=30.0, gt=0)


class LoginThrottleSettings(BaseModel):
    """Login attempts per window (counted before the password hash runs); see auth/throttle.py."""

    # Password checks for one username from one address, then 429 until the window ends.
    max_failures_per_pair: int = Field(default=5, ge=1)
    # Password checks from one address (any usernames), then 429 until the window ends.
    max_failures_per_address: int = Field(default=20, ge=1)
    # Failures of one username from all addresses past which its failures are answered
    # later and later; the username itself is never refused (no lockout of its owner).
    max_failures_per_username: int = Field(default=5, ge=1)
    window_seconds: int = Field(default=900, ge=1)
    # Each failure past the first of a pair (or past the username's allowance) adds
    # this much delay to its answer, up to max_delay_seconds.
    slowdown_seconds: float = Field(default=0.25, ge=0)
    max_delay_seconds: float = Field(default=2.0, ge=0)


class PasswordHashSettings(BaseModel):
    """argon2id costs of new password hashes; the defaults are RFC 9106's low-memory
    choice (argon2-cffi's). Lower them only where hashes guard nothing (a test run)."""

    time_cost: int = Field(default=3, ge=1)
    memory_cost_kib: int = Field(default=65536, ge=8)
    parallelism: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _memory_for_lanes(self) -> PasswordHashSettings:
        if self.memory_cost_kib < 8 * self.parallelism:
            raise ValueError("argon2 needs at least 8 KiB of memory per lane (parallelism)")
        return self


class DeliverySettings(BaseModel):
    """How the dispatcher submits messages to providers."""

    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=900.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    claim_batch: int = Field(default=512, ge=1)
    whatsapp_concurrency: int = Field(default=128, ge=1)
    sms_concurrency: int = Field(default=256, ge=1)
    email_concurrency: int = Field(default=32, ge=1)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # One submission's deadline: past it the attempt counts as failed (the provider
    # may still have taken it: at least once, as with every gateway). Below the lease.
    send_timeout_seconds: float = Field(default=30.0, gt=0)
    # How long a message may wait while no provider can take it (slow down, refused
    # credentials, every circuit open) before it ends failed.
    max_pending_seconds: float = Field(default=86400.0, gt=0)
    # While sends wait for a congested writer, an asynchronous send is stored for a
    # claim instead of delivered at once, and the dispatcher claims at most this many
    # every pause: sends take precedence (messages/precedence.py).
    sends_first: bool = True
    sends_first_claim_batch: int = Field(default=32, ge=1)
    sends_first_pause_seconds: float = Field(default=0.1, gt=0, le=5)


class ProviderSettings(BaseModel):
    """Circuit breakers and the inbox of what providers report."""

    # So many retryable failures within the window open a provider's circuit ...
    circuit_failures: int = Field(default=5, ge=1)
    circuit_window_seconds: float = Field(default=30.0, gt=0)
    # ... for this long; then one message probes it.
    circuit_open_seconds: float = Field(default=30.0, gt=0)
    # A report naming no known message is tried again for this long, then kept as
    # unmatched (GET /api/v4/providers/{id}/unmatched).
    unmatched_wait_seconds: float = Field(default=600.0, ge=0)
    inbox_poll_seconds: float = Field(default=1.0, gt=0)
    # How often every production provider with a template catalog (whatsapp_cloud)
    # syncs its business account's templates; they also sync when a provider is
    # added, changed or checked.
    template_sync_seconds: float = Field(default=3600.0, gt=0)
    # A replaced provider (its row changed) is closed this long after, as it may still
    # be finishing a submission.
    retire_grace_seconds: float = Field(default=30.0, ge=0)


class PriceSettings(BaseModel):
    """Credits charged in production (the sandbox never charges)."""

    sms_segment: Decimal = Decimal("1")
    whatsapp_message: Decimal = Decimal("1")
    # Template notifications, by the template's category (as WhatsApp prices them).
    whatsapp_marketing: Decimal = Decimal("1.5")
    whatsapp_utility: Decimal = Decimal("1")
    whatsapp_authentication: Decimal = Decimal("0.8")
    email_message: Decimal = Decimal("0.1")


class SandboxSettings(BaseModel):
    """The simulated providers' behaviour."""

    receipt_delay_seconds: float = Field(default=0.02, ge=0)
    # How often the simulated template review looks for templates due a decision (the
    # name is older than the inbox, which replaced the receipts' recovery sweep).
    recovery_interval_seconds: float = Field(default=5.0, gt=0)
    # How long the simulated review of a new sandbox template takes.
    template_review_seconds: float = Field(default=1.0, ge=0)
    # Above this many sends a second the simulated providers answer "slow down"
    # (as WhatsApp's 130429 or SMPP's 0x58 would); 0 never does.
    throttle_per_second: float = Field(default=0, ge=0)


class WebhookSettings(BaseModel):
    """Outbound webhooks: delivery timing, retries, auto-disable and the SSRF policy."""

    timeout_seconds: float = Field(default=15.0, gt=0)
    # Delays after each failed attempt; when they run out the delivery is given up.
    retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    retry_jitter: float = Field(default=0.1, ge=0, le=1)
    disable_after_seconds: float = Field(default=5 * 86400, gt=0)
    rotation_overlap_seconds: float = Field(default=86400, ge=0)
    # Sandbox webhooks may reach loopback and private networks (local development;
    # `tidings serve --demo` turns it on). Answers from such addresses are never kept.
    allow_private_in_sandbox: bool = False
    # UNSAFE: lets production webhooks reach loopback and private networks (SSRF).
    allow_private_in_production: bool = False
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=32, ge=1)
    lease_seconds: float = Field(default=60.0, gt=0)
    response_excerpt_bytes: int = Field(default=2048, ge=0)

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)
        return _split_csv(value)


class WidgetSettings(BaseModel):
    """The embeddable chat box: token lifetimes and how often its live stream polls."""

    default_expires_in_seconds: int = Field(default=3600, ge=60)
    max_expires_in_seconds: int = Field(default=86400, ge=60)
    poll_interval_seconds: float = Field(default=0.3, gt=0)
    # A comment line this often keeps proxies from closing an idle stream.
    keepalive_seconds: float = Field(default=15.0, gt=0)


class BulkSettings(BaseModel):
    """Bulk requests and the pace at which batches are sent."""

    max_recipients: int = Field(default=100_000, ge=1)
    # Rejections listed in an answer (all are counted).
    errors_listed: int = Field(default=1_000, ge=0)
    # Messages per second per provider (account, environment and channel); 0 = unpaced.
    sms_per_second: float = Field(default=0, ge=0)
    whatsapp_per_second: float = Field(default=0, ge=0)
    email_per_second: float = Field(default=0, ge=0)
    # Messages per second per account and environment, all channels together; 0 = none.
    account_per_second: float = Field(default=0, ge=0)
    # Concurrency a batch may use, out of each channel's: the rest stays free for
    # single sends, so they keep their latency while a batch drains.
    share_of_concurrency: float = Field(default=0.75, gt=0, le=1)


class EmailSettings(BaseModel):
    """Sending domains and return paths (spec section 7)."""

    # The domain of the VERP return paths (b-<message id>-<signature>@...); unset: the
    # envelope sender is the From address and bounces are not received.
    bounce_domain: str | None = None
    # The host the bounce domain's MX names (where the inbound listener is reachable).
    bounce_mx_host: str | None = None
    # What a sending domain's SPF record must include (the relay's, e.g. amazonses.com).
    spf_include: str | None = None
    # Every domain's records are looked up again this often (0: never).
    recheck_seconds: float = Field(default=3600.0, ge=0)
    # Processes rendering and DKIM-signing outgoing mail beside the event loop (started
    # with the first production email); 0: on the loop. Unset: 1 with 2 or more CPUs.
    signing_processes: int | None = Field(default=None, ge=0, le=64)


class InboundSmtpSettings(BaseModel):
    """The listener taking bounces and complaints on the bounce domain."""

    host: str = "0.0.0.0"
    # Unset: no listener in this process.
    port: int | None = Field(default=None, ge=0, le=65535)
    max_message_bytes: int = Field(default=10 * 1_048_576, ge=1024)
    # STARTTLS is offered when both are set.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class DnsSettings(BaseModel):
    """The resolvers of domain checks: comma-separated host:port; the system's when empty."""

    nameservers: str = ""


class Settings(BaseSettings):
    """All configuration of one Tidings deployment."""

    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path("./data")
    database_url: str | None = None
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    sqlite_driver: Literal["inline", "thread"] = "inline"

    jwt_secret: SecretStr | None = None
    # The key ring sealing secrets at rest: "kid:key,kid:key", the first seals.
    secrets_keys: SecretStr | None = None
    # Legacy: the single key that sealed enc:v1 values; only opens them now.
    secrets_key: SecretStr | None = None
    jwt_issuer: str = "tidings"
    jwt_audience: str = "tidings-api"
    token_lifetime_seconds: int = Field(default=3600, ge=60)
    token_max_lifetime_seconds: int = Field(default=86400, ge=60)

    sandbox_hosts: CsvList = Field(default_factory=list)
    trusted_proxies: CsvList = Field(default_factory=lambda: ["127.0.0.1", "::1"])

    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    hsts_max_age_seconds: int = 31536000

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_bulk_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    # Data rows one CSV import reads (POST /api/v4/contacts/import); rows past it are rejected.
    import_max_rows: int = Field(default=100_000, ge=1)

    dispatch: bool = True
    # Embedded mode (SQLite): the delivery side in a process of its own beside the API
    # (``tidings serve --delivery-process``), told of work and waits by tidings.db.local_bus.
    delivery_process: bool = False
    # Set by ``tidings serve --workers N``: its processes then share their rate limit's
    # counts (tidings.core.shared_windows) rather than each counting on its own.
    serve_workers: int = Field(default=1, ge=1)
    send_wait_seconds: float = Field(default=10.0, ge=0)
    # Scale-out mode: how often a waiting send also reads its message itself (the
    # verdict is pushed by NOTIFY; this only bounds the delay of one that was lost).
    send_wait_poll_seconds: float = Field(default=5.0, gt=0)
    sms_max_segments: int = Field(default=10, ge=1, le=255)
    # ISO 3166 country that numbers written without + or 00 are also read in (nationally);
    # unset: such digits are international, as WhatsApp reads them.
    phone_default_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    email_max_attachment_bytes: int = Field(default=10 * 1_048_576, ge=0)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    prices: PriceSettings = Field(default_factory=PriceSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    bulk: BulkSettings = Field(default_factory=BulkSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    inbound_smtp: InboundSmtpSettings = Field(default_factory=InboundSmtpSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)

    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)
    password_hash: PasswordHashSettings = Field(default_factory=PasswordHashSettings)

    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    @field_validator("sandbox_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tidings.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
