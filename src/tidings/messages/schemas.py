"""The message resource (spec section 4) and the list filters."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from pydantic_core import to_jsonable_python
from sqlalchemy.orm.attributes import instance_state

from tidings.http.schemas import ApiModel, has_lone_surrogate
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


# What MessageOut's fields accept without coercing or refusing: a value outside these
# takes the model's own path (and its coercion or error).
_CHANNELS = frozenset(("whatsapp", "sms", "email"))
_DIRECTIONS = frozenset(("outbound", "inbound"))
_ENVIRONMENTS = frozenset(("sandbox", "production"))
_STATUSES = frozenset(Status)
_TEXTS = (
    "from_address",
    "body",
    "batch_id",
    "encoding",
    "provider_id",
    "provider_message_id",
)
_FIELDS = (
    "id",
    "channel",
    "direction",
    "environment",
    "to_address",
    "status",
    "content",
    "segments",
    "credits",
    "attempts",
    "error_code",
    "error_message",
    "scheduled_at",
    "created_at",
    "updated_at",
    *_TEXTS,
)
# status, at, applied, kind: an event as :func:`message_body` takes it.
EventView = tuple[str, datetime, bool, str | None]


def _text_ok(value: object) -> bool:
    return value is None or (type(value) is str and not has_lone_surrogate(value))


def _status_text(status: str) -> str:
    return status if type(status) is str else Status(status).value


def _values(message: Message) -> dict[str, Any]:
    """The message's attributes by name. A message not yet stored through the ORM
    (a send's, inserted with Core) holds them in its ``__dict__``, where one it does
    not hold reads None, as through the ORM; reading them through the ORM's
    descriptors cost more than the rest of the answer."""
    if instance_state(message).key is None:
        return message.__dict__
    return {name: getattr(message, name) for name in _FIELDS}


def message_body(message: Message, events: list[EventView] | None = None) -> dict[str, Any]:
    """``message_out(message, events).model_dump(mode="json", by_alias=True)``, built
    without the model: on a send that does not wait, building and dumping the model
    (and an ORM event to build it from) cost more CPU than the rest of the answer.

    The same keys in the same order and the same values (datetimes by pydantic's own
    serializer); a message holding anything the model would coerce or refuse is
    given to the model instead, so that stays exactly as it was. Tests hold the two
    equal."""
    v = _values(message)
    get = v.get
    content = get("content") or {}
    if not isinstance(content, dict):
        return _model_body(message, events)
    status, subject, segments = get("status"), content.get("subject"), get("segments")
    credits = float(get("credits") or 0)
    error_code, error_message = get("error_code"), get("error_message") or ""
    scheduled, created, updated = get("scheduled_at"), get("created_at"), get("updated_at")
    if not (
        status in _STATUSES
        and get("channel") in _CHANNELS
        and get("direction") in _DIRECTIONS
        and get("environment") in _ENVIRONMENTS
        and type(get("id")) is str
        and type(get("to_address")) is str
        and _text_ok(get("id"))
        and _text_ok(get("to_address"))
        and all([_text_ok(get(name)) for name in _TEXTS])
        and _text_ok(subject)
        and (segments is None or type(segments) is int)
        and type(get("attempts")) is int
        and (not error_code or (_text_ok(error_code) and _text_ok(error_message)))
        and (scheduled is None or type(scheduled) is datetime)
        and type(created) is datetime
        and type(updated) is datetime
        and math.isfinite(credits)
        and (
            events is None
            or all(
                [
                    e[0] in _STATUSES
                    and type(e[1]) is datetime
                    and type(e[2]) is bool
                    and _text_ok(e[3])
                    for e in events
                ]
            )
        )
    ):
        return _model_body(message, events)
    # A new message's times are one object (its first event's too): shown once.
    created_text = to_jsonable_python(created)
    updated_text = created_text if updated is created else to_jsonable_python(updated)
    return {
        "id": get("id"),
        "channel": get("channel"),
        "direction": get("direction"),
        "environment": get("environment"),
        "to": get("to_address"),
        "from": get("from_address"),
        "status": _status_text(status),
        "body": get("body"),
        "subject": subject,
        "batchId": get("batch_id"),
        "segments": segments,
        "encoding": get("encoding"),
        "credits": credits,
        "providerId": get("provider_id"),
        "providerMessageId": get("provider_message_id"),
        "attempts": get("attempts"),
        "error": {"code": error_code, "message": error_message} if error_code else None,
        "scheduledAt": None if scheduled is None else to_jsonable_python(scheduled),
        "createdAt": created_text,
        "updatedAt": updated_text,
        "events": None
        if events is None
        else [
            {
                "status": _status_text(e_status),
                "at": created_text if at is created else to_jsonable_python(at),
                "applied": applied,
                "event": kind,
            }
            for e_status, at, applied, kind in events
        ],
    }


def _model_body(message: Message, events: list[EventView] | None) -> dict[str, Any]:
    shown = (
        None
        if events is None
        else [
            MessageEvent(status=status, at=at, applied=applied, kind=kind)
            for status, at, applied, kind in events
        ]
    )
    return message_out(message, shown).model_dump(mode="json", by_alias=True)
