"""Meta's error codes, and what each means to Tidings: the one table of the kind.

Meta says to branch on the numeric ``code`` (and ``error_data.details``), never on
the title. The same codes arrive two ways: in the HTTP answer to a send (the
error tree of :mod:`tidings.providers.errors` is raised) and later in a ``failed``
status webhook (the message ends ``undelivered`` with our code; the network had
already accepted it). Either way the message's ``errorCode`` is ours and its
``errorMessage`` keeps Meta's code, title and details.

=========================================  ===================  ==============================
Meta code                                  raised as            our code
=========================================  ===================  ==============================
190 (access token expired / invalid)       ConfigurationError   credentials_refused
368, 131031 (account restricted, locked),  ConfigurationError   account_restricted
131042 (payment), 131005 (access denied),
133010 (number not registered), 200, 10
4, 80007 (app / business account rate),    ThrottledError       throttled
130429 (number throughput), 131048 (spam
rate limit)
131056 (pair rate limit: one recipient)    ThrottledError       pair_rate_limited (retry in 6 s)
131000 (generic), 131016 (service          RetryableDelivery    provider_unavailable
unavailable), 131057 (maintenance), 1, 2
131047 (outside the 24-hour window)        PermanentDelivery    outside_customer_service_window
131026 (undeliverable to this number)      PermanentDelivery    undeliverable
131049 (ecosystem engagement limit)        PermanentDelivery    not_delivered_by_whatsapp
131050 (user stopped marketing), 130472    PermanentDelivery    marketing_refused
(experiment group), 131063, 131064
131051 (unsupported type), 131052/131053   PermanentDelivery    media_refused / unsupported
(media download / upload)
100, 131008, 131009 (invalid parameter)    PermanentDelivery    invalid_request
131021 (recipient is the sender), 131062   PermanentDelivery    invalid_recipient
(user id recipient not supported), 137000
132000, 132005, 132008, 132012             PermanentDelivery    template_params_mismatch
132001 (template does not exist)           PermanentDelivery    template_not_found
132007, 132015, 132016 (policy, paused,    PermanentDelivery    template_not_approved
disabled)
any other code with HTTP 4xx               PermanentDelivery    provider_rejected
HTTP 5xx, read timeouts                    RetryableDelivery    provider_unavailable
connection refused / connect timeout       ConnectionDown       provider_unreachable
=========================================  ===================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidings.providers.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)

# How long Meta wants a recipient left alone after 131056 (about one message in 6 s).
PAIR_RATE_RETRY_SECONDS = 6.0
THROTTLE_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Meaning:
    error: type[DeliveryError]
    code: str
    retry_after: float | None = None


_CREDENTIALS = Meaning(ConfigurationError, "credentials_refused")
_RESTRICTED = Meaning(ConfigurationError, "account_restricted")
_THROTTLED = Meaning(ThrottledError, "throttled", THROTTLE_RETRY_SECONDS)
_RETRY = Meaning(RetryableDeliveryError, "provider_unavailable")


def _permanent(code: str) -> Meaning:
    return Meaning(PermanentDeliveryError, code)


TABLE: dict[int, Meaning] = {
    190: _CREDENTIALS,
    10: _RESTRICTED,
    200: _RESTRICTED,
    368: _RESTRICTED,
    131031: _RESTRICTED,
    131042: _RESTRICTED,
    131005: _RESTRICTED,
    133010: _RESTRICTED,
    4: _THROTTLED,
    80007: _THROTTLED,
    130429: _THROTTLED,
    131048: _THROTTLED,
    131056: Meaning(ThrottledError, "pair_rate_limited", PAIR_RATE_RETRY_SECONDS),
    1: _RETRY,
    2: _RETRY,
    131000: _RETRY,
    131016: _RETRY,
    131057: _RETRY,
    131047: _permanent("outside_customer_service_window"),
    131026: _permanent("undeliverable"),
    131049: _permanent("not_delivered_by_whatsapp"),
    131050: _permanent("marketing_refused"),
    130472: _permanent("marketing_refused"),
    131063: _permanent("marketing_refused"),
    131064: _permanent("marketing_refused"),
    131051: _permanent("unsupported"),
    131052: _permanent("media_refused"),
    131053: _permanent("media_refused"),
    100: _permanent("invalid_request"),
    131008: _permanent("invalid_request"),
    131009: _permanent("invalid_request"),
    131021: _permanent("invalid_recipient"),
    131062: _permanent("invalid_recipient"),
    137000: _permanent("invalid_recipient"),
    132000: _permanent("template_params_mismatch"),
    132005: _permanent("template_params_mismatch"),
    132008: _permanent("template_params_mismatch"),
    132012: _permanent("template_params_mismatch"),
    132001: _permanent("template_not_found"),
    132007: _permanent("template_not_approved"),
    132015: _permanent("template_not_approved"),
    132016: _permanent("template_not_approved"),
}


def meaning_of(code: int | None, http_status: int) -> Meaning:
    """What Meta's ``code`` means; unknown codes by the HTTP status they came with."""
    if code is not None and code in TABLE:
        return TABLE[code]
    if http_status == 401:
        return _CREDENTIALS
    if http_status == 429:
        return _THROTTLED
    if http_status >= 500:
        return _RETRY
    return _permanent("provider_rejected")


def describe(error: dict[str, Any]) -> str:
    """Meta's words for an error object, with its code: ``Title (Meta 131047): details``."""
    code = error.get("code")
    title = str(error.get("title") or error.get("message") or "error")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    text = f"{title} (Meta {code})" if code is not None else title
    if details and details != title:
        text += f": {details}"
    return text[:500]


def error_of(http_status: int, body: Any) -> DeliveryError:
    """The exception for an HTTP answer that is not a success."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": f"HTTP {http_status} without a Graph error object"}
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    meaning = meaning_of(code, http_status)
    message = describe(error)
    if issubclass(meaning.error, RetryableDeliveryError):
        return meaning.error(meaning.code, message, retry_after=meaning.retry_after)
    return meaning.error(meaning.code, message)


def failed_status_code(errors: Any) -> tuple[str, str]:
    """Our code and the message for a ``failed`` status webhook's ``errors[]``."""
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, dict):
        first = {}
    raw_code = first.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    # Accepted, then failed: whatever the class, the message ends there with our code.
    meaning = meaning_of(code, 400)
    return meaning.code, describe(first) if first else "WhatsApp reported the message failed."
