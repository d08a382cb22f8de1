"""The providers API's bodies and answers (spec section 13)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from tidings.http.schemas import ApiModel, ApiRequest

Channel = Literal["email", "sms", "whatsapp"]


class ProviderCreate(ApiRequest):
    channel: Channel
    kind: str = Field(min_length=1, max_length=32, examples=["simulator"])
    name: str = Field(min_length=1, max_length=200, examples=["Staging simulator"])
    priority: int = Field(default=1, ge=1, le=1000)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


class ProviderUpdate(ApiRequest):
    """Fields left out keep their values; so do secrets left out of ``config`` (or
    sent back as ``********``)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"priority": 2, "config": {"host": "smsc2.example.net"}}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    priority: int | None = Field(default=None, ge=1, le=1000)
    enabled: bool | None = None
    config: dict[str, Any] | None = None


class ProviderError(ApiModel):
    code: str
    message: str | None = None


class ProviderOut(ApiModel):
    id: str = Field(examples=["prv_01JD8X3V7K2M4N6P8Q0R2S4T6V"])
    channel: Channel
    kind: str
    name: str
    priority: int
    enabled: bool
    health: Literal["unknown", "ok", "failing"]
    last_error: ProviderError | None = None
    config: dict[str, Any]
    inbound_url: str | None = None
    created_at: datetime
    updated_at: datetime


class CheckOut(ApiModel):
    ok: bool
    latency_ms: int = Field(examples=[12])
    detail: str = Field(examples=["The simulated network answered; nothing was sent."])


class UnmatchedOut(ApiModel):
    id: str
    state: Literal["unmatched", "parked"]
    received_at: datetime
    attempts: int
    error: str | None = None
    payload: dict[str, Any]
