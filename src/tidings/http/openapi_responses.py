"""The problem+json schema and the error answers documented on every operation."""

from __future__ import annotations

from typing import Any

from tidings.http.problems import PROBLEM_JSON

# Written out rather than generated: FastAPI puts a route's ``model=`` responses
# under application/json, and the answers are application/problem+json.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An error answer (RFC 9457) with a stable code.",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Unprocessable Content"},
        "status": {"type": "integer", "example": 422},
        "code": {"type": "string", "example": "validation_failed"},
        "detail": {"type": "string", "example": "The request has invalid fields: to."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string", "example": "to"},
                    "code": {"type": "string", "example": "invalid_phone_number"},
                    "message": {"type": "string"},
                },
            },
        },
        "requestId": {"type": "string"},
    },
}

_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("Bad Request", "invalid_json", "The request body is not valid JSON."),
    401: (
        "Unauthorized",
        "invalid_token",
        "The bearer token is malformed or its signature is wrong.",
    ),
    402: ("Payment Required", "insufficient_credits", "The account has 0.5 credits; 1 is needed."),
    403: ("Forbidden", "https_required", "Use HTTPS."),
    404: ("Not Found", "not_found", "There is no such resource."),
    405: ("Method Not Allowed", "method_not_allowed", "GET is not allowed on this path."),
    409: ("Conflict", "idempotency_key_reused", "This Idempotency-Key was used with another body."),
    413: ("Content Too Large", "payload_too_large", "The request body is larger than the limit."),
    415: ("Unsupported Media Type", "unsupported_media_type", "Send JSON."),
    422: ("Unprocessable Content", "validation_failed", "The request has invalid fields: to."),
    429: ("Too Many Requests", "rate_limited", "Too many requests; retry in 12 s."),
    500: ("Internal Server Error", "internal_error", "Something went wrong on our side."),
    503: ("Service Unavailable", "channel_not_configured", "No SMS provider is configured."),
}

_DESCRIPTIONS = {
    400: "Malformed JSON.",
    401: "Missing, malformed, expired, revoked or other-environment token.",
    402: "Not enough credits.",
    403: "Plain HTTP from a remote address.",
    404: "Not found.",
    409: "Conflict.",
    413: "Body too large.",
    415: "Body is not JSON.",
    422: "Invalid request.",
    429: "Rate limited; see Retry-After.",
    500: "Unexpected error (reported with a request id).",
    503: "Channel or provider unavailable.",
}

COMMON = (400, 403, 413, 415, 422, 429, 500)
AUTHENTICATED = (*COMMON, 401)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the Problem schema and an example."""
    result: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        title, code, detail = _EXAMPLES[status]
        result[status] = {
            "description": _DESCRIPTIONS[status],
            "content": {
                PROBLEM_JSON: {
                    "schema": PROBLEM_SCHEMA,
                    "example": {
                        "type": "about:blank",
                        "title": title,
                        "status": status,
                        "code": code,
                        "detail": detail,
                    },
                }
            },
        }
    return result
