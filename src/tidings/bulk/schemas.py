"""The bulk requests of the three channels, the bulk answer and the batch resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tidings.http.json_body import SurrogateAware
from tidings.http.schemas import ApiModel, ApiRequest
from tidings.messages.email_schemas import EmailAttachment, EmailTracking

BatchStatus = Literal["scheduled", "accepted", "completed", "canceled"]


class BulkRecipient(BaseModel):
    # A plain model: ApiModel's per-field check costs a second per 100,000
    # recipients. pydantic's JSON parser refuses lone surrogates; when a body
    # holding one is parsed the slow way, the planner checks these fields.
    to: str = Field(max_length=320, examples=["+393331234567"])
    variables: dict[str, str] = Field(default_factory=dict, examples=[{"name": "Ada"}])


class BulkCommon(ApiRequest, SurrogateAware):
    recipients: list[BulkRecipient] | None = Field(
        default=None, description="Up to 100,000 recipients; or give listId."
    )
    list_id: str | None = Field(default=None, max_length=40, examples=["lst_01JDQ3W6V2X4"])
    name: str | None = Field(default=None, max_length=200, examples=["November newsletter"])
    scheduled_at: datetime | None = Field(default=None, examples=["2026-11-24T08:00:00Z"])


class SmsBulkRequest(BulkCommon):
    body: str = Field(
        min_length=1, max_length=10_000, examples=["Hi {{name}}, your table is ready."]
    )
    from_: str | None = Field(default=None, alias="from", max_length=16, examples=["Tidings"])
    validity_period: int | None = Field(default=None, ge=60, le=604800)


class EmailBulkRequest(BulkCommon):
    from_: str = Field(alias="from", max_length=320, examples=["News <news@yourdomain.com>"])
    subject: str = Field(min_length=1, max_length=998, examples=["{{name}}, our November news"])
    text: str | None = Field(default=None, max_length=1_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    reply_to: str | None = Field(default=None, max_length=320)
    headers: dict[str, str] | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    attachments: list[EmailAttachment] = Field(default_factory=list, max_length=20)
    tracking: EmailTracking = Field(default_factory=EmailTracking)


class BulkTemplate(ApiRequest):
    name: str = Field(max_length=512, examples=["order_update"])
    language: str = Field(max_length=16, examples=["en"])
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="As for a single notification; strings may hold {{variable}} placeholders.",
        examples=[{"body": ["{{name}}", "{{order}}"]}],
    )


class WhatsAppBulkRequest(BulkCommon):
    template: BulkTemplate | None = Field(
        default=None, description="A template notification per recipient (any window)."
    )
    body: str | None = Field(
        default=None,
        max_length=4096,
        description="Free-form text: only contacts whose 24-hour window is open get it.",
    )


class BulkError(ApiModel):
    index: int = Field(description="The recipient's position in the request (from 0).")
    to: str
    code: str = Field(examples=["invalid_phone_number"])
    message: str


class BulkAnswer(ApiModel):
    id: str = Field(examples=["bat_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    status: Literal["accepted", "scheduled"]
    total: int
    accepted: int
    rejected: int
    duplicates: int
    credits: float = 0.0
    errors: list[BulkError]


class BatchOut(ApiModel):
    id: str
    channel: Literal["whatsapp", "sms", "email"]
    name: str | None = None
    status: BatchStatus
    total: int
    accepted: int
    rejected: int
    duplicates: int
    credits: float
    counts: dict[str, int] = Field(
        description="Accepted messages per status; they add up to accepted.",
        examples=[{"queued": 10, "sent": 40, "delivered": 50}],
    )
    pending: int = Field(description="Messages not yet final.")
    scheduled_at: datetime | None = None
    created_at: datetime
    started_at: datetime | None = Field(
        default=None, description="When its first message went to the provider."
    )
    canceled_at: datetime | None = None
    finished_at: datetime | None = Field(
        default=None, description="When its last message reached a final status."
    )
