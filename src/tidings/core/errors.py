"""The one tree of errors the API can answer with.

Every error a client can see is an :class:`ApiError` carrying an HTTP status and a
stable ``code`` (spec section 1). Codes are never renamed; new ones may be added.

    ApiError                                 (status, code, title, detail, errors)
    ├── BadRequest            400  invalid_json
    ├── Unauthorized          401  invalid_credentials | invalid_token |
    │                              token_expired | wrong_environment
    ├── PaymentRequired       402  insufficient_credits
    ├── Forbidden             403  forbidden | https_required
    ├── NotFound              404  not_found | template_not_found
    ├── MethodNotAllowed      405  method_not_allowed
    ├── Conflict              409  idempotency_key_reused | idempotency_key_in_use
    ├── PayloadTooLarge       413  payload_too_large
    ├── UnsupportedMediaType  415  unsupported_media_type
    ├── Unprocessable         422  validation_failed | invalid_phone_number | ...
    ├── TooManyRequests       429  rate_limited (always with Retry-After)
    ├── InternalError         500  internal_error (never shows internals)
    └── ServiceUnavailable    503  channel_not_configured | provider_unavailable

Routers and services raise these; :mod:`tidings.http.problems` turns them into
``application/problem+json`` answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request: where, which rule, and a readable sentence."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class ApiError(Exception):
    """An error that answers the client with a problem document."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def title(self) -> str:
        return {413: "Content Too Large", 422: "Unprocessable Content"}.get(
            self.status, HTTPStatus(self.status).phrase
        )


class BadRequest(ApiError):
    status = 400
    code = "invalid_json"


class Unauthorized(ApiError):
    status = 401
    code = "invalid_token"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers=_www_authenticate(code or self.code))


def _www_authenticate(code: str) -> dict[str, str]:
    if code in ("invalid_token", "token_expired", "wrong_environment"):
        return {"WWW-Authenticate": 'Bearer realm="tidings", error="invalid_token"'}
    return {"WWW-Authenticate": 'Bearer realm="tidings"'}


class PaymentRequired(ApiError):
    status = 402
    code = "insufficient_credits"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    status = 422
    code = "validation_failed"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class InternalError(ApiError):
    status = 500
    code = "internal_error"


class ServiceUnavailable(ApiError):
    status = 503
    code = "provider_unavailable"
