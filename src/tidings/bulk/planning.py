"""Turning a bulk request's recipients into messages to store, in memory.

Every recipient is validated (number or address), rendered, and checked
against the opt-outs or suppressions before anything is written; duplicates
(the same normalised recipient twice) are counted and listed. Each rejected
recipient is listed with its index in the request and a code, the first
``errors_listed`` of them, and all are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from tidings.bulk.rendering import MissingVariable
from tidings.core.errors import ApiError
from tidings.http.schemas import has_lone_surrogate


class Recipient(Protocol):
    """A recipient as given: a request's own (not copied: 100,000 objects cost
    time) or a list member's."""

    @property
    def to(self) -> str: ...

    @property
    def variables(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class ListedRecipient:
    to: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One message of a batch: its row's varying values."""

    to: str
    body: str | None
    content: dict[str, Any]
    segments: int | None
    encoding: str | None
    cost: Decimal
    id: str | None = None
    # The content already encoded as JSON (then ``content`` is left empty): encoded
    # in the planning thread rather than on the event loop, and a string holds a
    # fraction of the memory of the dictionaries it encodes.
    content_json: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    to: str
    code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "to": self.to, "code": self.code, "message": self.message}


class Rejected(Exception):
    """A recipient that cannot be sent to; the batch goes on without it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Plan:
    total: int = 0
    messages: list[PlannedMessage] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0
    errors: list[Rejection] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return sum((m.cost for m in self.messages), Decimal(0))


# A plan lets the GIL go on purpose for PAUSE_SECONDS after each PAUSE_AFTER seconds
# of work (looked at every CHECK_EVERY recipients).
CHECK_EVERY = 50
PAUSE_AFTER = 0.02
PAUSE_SECONDS = 0.0005

# Turns one recipient into its message, or raises Rejected / MissingVariable / ApiError.
Build = Callable[[str, Mapping[str, str]], PlannedMessage]
# The recipient's normalised form (E.164, lower-cased address), or raises.
Normalise = Callable[[str], str]


def plan(
    recipients: Iterable[Recipient],
    *,
    normalise: Normalise,
    build: Build,
    refused: Callable[[str], Rejected | None],
    errors_listed: int,
    check_text: bool = True,
) -> Plan:
    """``check_text``: whether recipients may hold unpaired surrogates (pydantic's
    JSON parser refuses them, so a body it parsed holds none)."""
    result = Plan()
    seen: set[str] = set()

    def reject(index: int, to: str, code: str, message: str) -> None:
        result.rejected += 1
        if len(result.errors) < errors_listed:
            result.errors.append(Rejection(index, to, code, message))

    last_pause = time.perf_counter()
    for index, recipient in enumerate(recipients):
        if index % CHECK_EVERY == 0 and time.perf_counter() - last_pause >= PAUSE_AFTER:
            # Planning runs in a worker thread, and the event loop's thread needs the
            # GIL back often. Python hands it over every 5 ms when asked, but with
            # other busy threads (the commit thread, the frees) the loop's thread can
            # lose that race again and again during a long email plan: a short sleep
            # lets it in for sure (2.5 % of the planning time).
            time.sleep(PAUSE_SECONDS)
            last_pause = time.perf_counter()
        result.total += 1
        if check_text and _unencodable(recipient):
            reject(index, "", "invalid_text", "The recipient holds an unpaired UTF-16 surrogate.")
            continue
        try:
            to = normalise(recipient.to)
        except Rejected as error:
            reject(index, recipient.to, error.code, error.message)
            continue
        except ApiError as error:
            reject(index, recipient.to, error.code, error.detail)
            continue
        if to in seen:
            result.duplicates += 1
            if len(result.errors) < errors_listed:
                result.errors.append(
                    Rejection(
                        index,
                        recipient.to,
                        "duplicate_recipient",
                        f"{to} is already in this batch.",
                    )
                )
            continue
        seen.add(to)
        refusal = refused(to)
        if refusal is not None:
            reject(index, recipient.to, refusal.code, refusal.message)
            continue
        try:
            result.messages.append(build(to, recipient.variables))
        except MissingVariable as missing:
            reject(
                index,
                recipient.to,
                "missing_variable",
                f"The content uses {{{{{missing.name}}}}} and this recipient has no "
                f"variable {missing.name!r}.",
            )
        except Rejected as error:
            reject(index, recipient.to, error.code, error.message)
        except ApiError as error:
            reject(index, recipient.to, error.code, error.detail)
    return result


# Objects freed per step by release(): a few ms of the GIL.
RELEASE_SLICE = 5_000


def release(items: Sequence[object]) -> None:
    """Empty a list a slice at a time; run it in a worker thread. Freeing 100,000
    objects in one step holds the GIL for tens of ms; between two slices the
    interpreter may hand it to the event loop's thread."""
    if isinstance(items, list):
        while items:
            del items[-RELEASE_SLICE:]


def _unencodable(recipient: Recipient) -> bool:
    if not recipient.to.isascii() and has_lone_surrogate(recipient.to):
        return True
    return any(
        not value.isascii() and has_lone_surrogate(value) for value in recipient.variables.values()
    ) or any(not name.isascii() for name in recipient.variables)
