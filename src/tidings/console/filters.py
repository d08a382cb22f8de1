"""The messages list's filters, read from the query string as a person typed them.

A form's GET never earns a 422: a value that is not one of the choices, or a time
that does not parse, is left out and named in :attr:`MessageQuery.ignored` for the
page to say so. Times are UTC: ``2026-12-06``, ``2026-12-06T08:00`` (what a
``datetime-local`` input sends) or a full ISO 8601 time with its offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from tidings.messages.repository import MessageFilters
from tidings.messages.status import Status

CHANNELS = ("whatsapp", "sms", "email")
DIRECTIONS = ("outbound", "inbound")
STATUSES = tuple(status.value for status in Status)
MAX_TEXT = 320
PAGE_SIZE = 50


def parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_field(value: datetime | None) -> str:
    """A time as a ``datetime-local`` input shows it (UTC, to the minute)."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What the list was asked for: the filters, the search, the page."""

    channel: str = ""
    status: str = ""
    direction: str = ""
    to: str = ""
    batch: str = ""
    since: datetime | None = None
    until: datetime | None = None
    search: str = ""
    after: str = ""
    ignored: list[str] = field(default_factory=list)

    def filters(self) -> MessageFilters:
        return MessageFilters(
            channel=self.channel or None,
            status=self.status or None,
            direction=self.direction or None,
            to=self.to or None,
            batch_id=self.batch or None,
            since=self.since,
            until=self.until,
        )

    def query(self, **changes: str | None) -> dict[str, str | None]:
        """The query string of this list (for links), with ``changes``."""
        values: dict[str, str | None] = {
            "channel": self.channel,
            "status": self.status,
            "direction": self.direction,
            "to": self.to,
            "batch": self.batch,
            "since": time_field(self.since),
            "until": time_field(self.until),
        }
        values.update(changes)
        return values

    @property
    def filtered(self) -> bool:
        return any(self.query().values())


def _choice(params: QueryParams, name: str, choices: tuple[str, ...], ignored: list[str]) -> str:
    value = params.get(name, "").strip()
    if value and value not in choices:
        ignored.append(f"{name} “{value[:40]}”")
        return ""
    return value


def _time(params: QueryParams, name: str, ignored: list[str]) -> datetime | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    value = parse_time(text[:64])
    if value is None:
        ignored.append(f"{name} “{text[:40]}”")
    return value


def message_query(params: QueryParams) -> MessageQuery:
    ignored: list[str] = []
    return MessageQuery(
        channel=_choice(params, "channel", CHANNELS, ignored),
        status=_choice(params, "status", STATUSES, ignored),
        direction=_choice(params, "direction", DIRECTIONS, ignored),
        to=params.get("to", "").strip()[:MAX_TEXT],
        batch=params.get("batch", "").strip()[:64],
        since=_time(params, "since", ignored),
        until=_time(params, "until", ignored),
        search=params.get("q", "").strip()[:MAX_TEXT],
        after=params.get("after", "").strip()[:64],
        ignored=ignored,
    )
