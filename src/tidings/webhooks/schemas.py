"""Request and answer bodies of the webhook endpoints (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tidings.http.schemas import ApiModel, ApiRequest
from tidings.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "message.queued",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "message.undelivered",
    "message.canceled",
    "message.received",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.complained",
    "email.unsubscribed",
    "contact.opted_out",
    "contact.changed",
    "batch.completed",
    "template.updated",
    "domain.updated",
)
EVENT_PREFIXES = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)
URL_EXAMPLE = "https://your-app.com/hook"


class WebhookCreate(ApiRequest):
    url: str = Field(min_length=1, max_length=2048, examples=[URL_EXAMPLE])
    events: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Event names or prefixes such as `message.*`; all events when absent.",
        examples=[["message.*", "contact.opted_out"]],
    )
    description: str | None = Field(default=None, max_length=500, examples=["Order updates"])


class WebhookUpdate(ApiRequest):
    url: str | None = Field(default=None, min_length=1, max_length=2048, examples=[URL_EXAMPLE])
    events: list[str] | None = Field(default=None, max_length=64, examples=[["message.*"]])
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(default=None, examples=[True])


class WebhookOut(ApiModel):
    id: str = Field(examples=["whk_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    url: str
    events: list[str]
    description: str | None = None
    status: Literal["active", "disabled"]
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(
        description="Shown only here and when rotated.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    warning: str | None = Field(
        default=None,
        description="Set at creation when the URL's host does not resolve from the server "
        "yet: the webhook is active and each delivery checks the URL again.",
        examples=[None],
    )


class ReplayRequest(ApiRequest):
    since: datetime = Field(examples=["2026-11-24T00:00:00Z"])


class ReplayOut(ApiModel):
    replayed: int


class AttemptOut(ApiModel):
    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response: str | None = Field(default=None, description="The first bytes of the answer.")


class DeliveryOut(ApiModel):
    id: str = Field(examples=["dlv_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    webhook_id: str
    event_id: str = Field(description="The `webhook-id` header of every attempt.")
    event_type: str
    subject_id: str | None = None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    attempt_log: list[AttemptOut] | None = None


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(**_fields(endpoint))


def webhook_with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**_fields(endpoint), secret=secret)


def _fields(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "status": "active" if endpoint.enabled else "disabled",
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at
        if endpoint.previous_secret
        else None,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def delivery_out(
    delivery: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        subject_id=delivery.subject_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        attempt_log=None
        if attempts is None
        else [
            AttemptOut(
                at=a.at,
                duration_ms=a.duration_ms,
                status_code=a.status_code,
                error=a.error,
                response=a.response_excerpt,
            )
            for a in attempts
        ],
    )
