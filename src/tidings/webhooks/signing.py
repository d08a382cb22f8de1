"""Standard Webhooks v1 signatures: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``.

A secret is ``whsec_`` plus the base64 of 32 random bytes; the HMAC key is the
decoded bytes. During a rotation's overlap the header carries one signature per
secret, space-separated, and receivers accept a message when any one matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets_)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def body_of(event_type: str, event_at: datetime, data: dict[str, Any]) -> bytes:
    """The same bytes on every attempt of a delivery."""
    document = {"type": event_type, "timestamp": iso(event_at), "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def headers_for(
    secrets_: Iterable[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Tidings-Webhooks/1",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, webhook_id, timestamp, body),
    }
