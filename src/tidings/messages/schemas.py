"""The message resource (spec section 4) and the list filters."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tidings.http.schemas import ApiModel
from tidings.messages.models import Message, MessageEvent
from tidings.messages.status import Status

Channel = Literal["whatsapp", "sms", "email"]
Direction = Literal["outbound", "inbound"]


class MessageError(ApiModel):
    code: str = Field(examples=["provider_rejected"])
    message: str = Field(examples=["The provider refused the message."])


class MessageEventOut(ApiModel):
    status: Status
    at: datetime
    applied: bool = Field(
        default=True,
        description="False for a report that did not change the status (late, or a retry).",
    )
    event: str | None = Field(
        default=None,
        description="What happened when it is not a status report: retry, opened, clicked...",
    )


class MessageOut(ApiModel):
    id: str = Field(examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    channel: Channel
    direction: Direction
    environment: Literal["sandbox", "production"]
    to: str = Field(examples=["+393331234567"])
    from_: str | None = Field(default=None, alias="from", examples=["Tidings"])
    status: Status
    body: str | None = Field(default=None, examples=["Hello!"])
    subject: str | None = None
    batch_id: str | None = None
    segments: int | None = Field(default=None, examples=[1])
    encoding: str | None = Field(default=None, examples=["GSM-7"])
    credits: float = Field(examples=[1.0])
    # The provider that took the message (its last attempt), and the id it gave.
    provider_id: str | None = Field(default=None, examples=["prv_01JD8X3V7K2M4N6P8Q0R2S4T6V"])
    provider_message_id: str | None = None
    attempts: int = 0
    error: MessageError | None = None
    scheduled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    events: list[MessageEventOut] | None = None


def message_out(message: Message, events: list[MessageEvent] | None = None) -> MessageOut:
    error = (
        MessageError(code=message.error_code, message=message.error_message or "")
        if message.error_code
        else None
    )
    return MessageOut(
        id=message.id,
        channel=message.channel,
        direction=message.direction,
        environment=message.environment,
        to=message.to_address,
        from_=message.from_address,
        status=Status(message.status),
        body=message.body,
        subject=(message.content or {}).get("subject"),
        batch_id=message.batch_id,
        segments=message.segments,
        encoding=message.encoding,
        credits=float(message.credits or 0),
        provider_id=message.provider_id,
        provider_message_id=message.provider_message_id,
        attempts=message.attempts,
        error=error,
        scheduled_at=message.scheduled_at,
        created_at=message.created_at,
        updated_at=message.updated_at,
        events=None
        if events is None
        else [
            MessageEventOut(status=Status(e.status), at=e.at, applied=e.applied, event=e.kind)
            for e in events
        ],
    )


def message_payload(message: Message) -> dict[str, object]:
    """The message as webhooks carry it (without the events list)."""
    return message_out(message).model_dump(mode="json", by_alias=True, exclude={"events"})
