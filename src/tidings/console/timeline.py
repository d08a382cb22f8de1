"""A message's history in words: each event, its time, and what its detail says.

The status writer and the dispatcher keep a detail with some events (the provider
that took an attempt, the error, when the retry is due, which part of a long SMS a
receipt was for); this turns each into sentences a person can read, and a tone for
its colour. Unknown detail keys are shown as ``key: value``, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidings.messages.models import Message, MessageEvent
from tidings.messages.status import TERMINAL, Status
from tidings.providers.schemas import ProviderOut

STATUS_WORDS = {
    "scheduled": "Scheduled",
    "queued": "Queued for sending",
    "sent": "Accepted by the provider",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed: never accepted by a provider",
    "undelivered": "Not delivered: accepted, then lost or refused by the network",
    "canceled": "Canceled",
    "received": "Received",
}
GOOD = frozenset({"delivered", "read", "received"})
BAD = frozenset({"failed", "undelivered", "canceled"})
# Detail keys said in words below, or of no use to a reader.
_SAID = frozenset({"providerId", "error", "attempt", "retryAt", "part", "parts", "worker"})


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    status: str
    title: str
    lines: list[str]
    tone: str  # good | bad | "" (neither)
    applied: bool


def tone_of(status: str) -> str:
    return "good" if status in GOOD else "bad" if status in BAD else ""


def provider_words(provider_id: str | None, providers: Mapping[str, ProviderOut]) -> str | None:
    if not provider_id:
        return None
    provider = providers.get(provider_id)
    if provider is None:
        return f"{provider_id} (since removed)"
    return f"{provider.name} ({provider.kind}, {provider_id})"


def _error_words(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    code = str(error.get("code") or "error")
    message = error.get("message")
    return f"{code}: {message}" if message else code


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def entry(event: MessageEvent, providers: Mapping[str, ProviderOut]) -> TimelineEntry:
    detail: Mapping[str, Any] = event.detail or {}
    kind = event.kind
    lines: list[str] = []
    if kind == "retry":
        attempt = detail.get("attempt")
        title = f"Attempt {attempt} did not go through" if attempt else "An attempt failed"
        if detail.get("retryAt"):
            lines.append(f"Tried again from {detail['retryAt']}")
    elif kind == "part_delivered":
        title = f"Part {detail.get('part', '?')} of {detail.get('parts', '?')} delivered"
    elif kind:
        title = kind.replace("_", " ").capitalize()
    else:
        title = STATUS_WORDS.get(event.status, event.status)
        if not event.applied:
            lines.append("Reported late or again: kept, the status did not change.")
    said_provider = provider_words(detail.get("providerId"), providers)
    if said_provider:
        lines.append(f"Provider: {said_provider}")
    said_error = _error_words(detail.get("error"))
    if said_error:
        lines.append(said_error)
    lines.extend(f"{key}: {_value(value)}" for key, value in detail.items() if key not in _SAID)
    tone = "bad" if kind == "retry" else tone_of(event.status) if not kind else ""
    return TimelineEntry(event.at, event.status, title, lines, tone, event.applied)


def entries(
    events: list[MessageEvent], providers: Mapping[str, ProviderOut]
) -> list[TimelineEntry]:
    return [entry(event, providers) for event in events]


def is_settled(message: Message) -> bool:
    """Whether nothing more is expected: a terminal status, or ``delivered`` on a
    channel where ``read`` never follows (WhatsApp's may)."""
    status = Status(message.status)
    return status in TERMINAL or (status == Status.DELIVERED and message.channel != "whatsapp")
