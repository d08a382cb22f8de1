"""What a relay's replies mean, one table: the reply code (and its RFC 3463 enhanced
status code, when the relay gives one) -> the delivery error tree.

=====================================  ===========================================
reply                                  outcome
=====================================  ===========================================
2xx                                    taken (``sent``)
AUTH 535 / 534 / 530, 5.7.8            :class:`ConfigurationError` (credentials
                                       refused: the provider is failing, messages
                                       wait without using attempts)
421 (any stage)                        :class:`ConnectionDown` (the relay is closing)
4.7.x throttling, 450/451/452 with     :class:`ThrottledError` (slow down: the
"rate"/"too many", 454 from SES        attempt is given back)
other 4xx                              :class:`RetryableDeliveryError` (backoff)
5.1.x at RCPT                          a hard bounce: the address does not exist
                                       (see :mod:`.provider`: ``undelivered`` and
                                       suppressed through the inbox)
other 5xx                              :class:`PermanentDeliveryError` (``failed``
                                       with the relay's reply text)
=====================================  ===========================================

The reply text is kept (trimmed) as the error's message: it is what the operator
needs to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_SLOW_DOWN = re.compile(r"rate|too many|throttl|slow down", re.IGNORECASE)
MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply of the relay, with its enhanced status code when it gave one."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        """Taken: a 2xx (250, or 251 for a forwarded recipient)."""
        return 200 <= self.code < 300

    @property
    def enhanced(self) -> str | None:
        match = _ENHANCED.match(self.text)
        return ".".join(match.groups()) if match else None

    @property
    def shown(self) -> str:
        return f"{self.code} {self.text}".strip()[:MAX_TEXT]

    @property
    def hard_bounce(self) -> bool:
        """The mailbox (or its domain) does not exist: 5.1.x."""
        enhanced = self.enhanced
        return self.code >= 500 and enhanced is not None and enhanced.startswith("5.1.")


AUTH_REFUSED = frozenset({530, 534, 535, 538})


def error_for(reply: Reply, *, stage: str) -> DeliveryError:
    """The error for a refusal at ``stage`` (auth, mail, rcpt, data)."""
    text = reply.shown
    if stage == "auth" and (reply.code in AUTH_REFUSED or reply.enhanced == "5.7.8"):
        return ConfigurationError("credentials_refused", f"The relay refused the login: {text}")
    if reply.code == 530:
        return ConfigurationError("auth_required", f"The relay requires a login: {text}")
    if reply.code == 421:
        return ConnectionDown("relay_unavailable", text)
    if 400 <= reply.code < 500:
        enhanced = reply.enhanced or ""
        if (
            enhanced.startswith("4.7.")
            or reply.code == 454
            or (reply.code in (450, 451, 452) and _SLOW_DOWN.search(reply.text))
        ):
            return ThrottledError("throttled", text, retry_after=_seconds_in(reply.text))
        return RetryableDeliveryError("relay_deferred", text, retry_after=_seconds_in(reply.text))
    if reply.code >= 500:
        # 5.1.x names the address of the stage: a recipient at RCPT, the sender at MAIL.
        code = "recipient_unknown" if reply.hard_bounce and stage == "rcpt" else "relay_rejected"
        return PermanentDeliveryError(code, text)
    return RetryableDeliveryError("relay_unexpected", f"Unexpected reply: {text}")


_WAIT = re.compile(r"(\d{1,5})\s*(second|sec|s\b|minute|min)", re.IGNORECASE)


def _seconds_in(text: str) -> float | None:
    """A wait the relay names ("try again in 30 seconds"), as Postal reads it."""
    match = _WAIT.search(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value * 60 if match.group(2).lower().startswith("min") else value
