"""Signed tracking tokens: which message, which action, which link.

A token is ``<payload>.<mac>``, both base64url without padding. The payload is
``<action>:<message id>[:<link index>]`` with action ``o`` (open pixel), ``c``
(click) or ``u`` (unsubscribe); the MAC is the first 16 bytes of HMAC-SHA256 over
the payload with the tracking key, itself ``HMAC(JWT signing key,
"tidings-tracking")``. A click token names a link by its index in the message's
stored link list, never by URL, so a token can only ever lead to a link the
message itself carried: there is no open redirect to forge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tidings.auth.tokens import TokenCodec

KEY_LABEL = b"tidings-tracking"
MAC_BYTES = 16
MAX_TOKEN_LENGTH = 200

Action = Literal["o", "c", "u"]
_ACTIONS: frozenset[str] = frozenset({"o", "c", "u"})
_MESSAGE_ID = re.compile(r"msg_[0-9A-Z]{26}")


@dataclass(frozen=True, slots=True)
class TrackingToken:
    action: Action
    message_id: str
    link: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrackingSigner:
    """Makes and checks tracking tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def sign(self, action: Action, message_id: str, link: int | None = None) -> str:
        parts = [action, message_id] + ([str(link)] if link is not None else [])
        payload = ":".join(parts).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def open_token(self, message_id: str) -> str:
        return self.sign("o", message_id)

    def click_token(self, message_id: str, link: int) -> str:
        return self.sign("c", message_id, link)

    def unsubscribe_token(self, message_id: str) -> str:
        return self.sign("u", message_id)

    def verify(self, token: str, action: Action) -> TrackingToken | None:
        """The token's content, or None when it is malformed, tampered or of another
        action. Never raises."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            return None
        encoded_payload, encoded_mac = token.split(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            parts = payload.decode("ascii").split(":")
        except UnicodeDecodeError:
            return None
        if parts[0] != action or parts[0] not in _ACTIONS or len(parts) < 2:
            return None
        if not _MESSAGE_ID.fullmatch(parts[1]):
            return None
        if action == "c":
            if len(parts) != 3 or not parts[2].isdigit() or len(parts[2]) > 6:
                return None
            return TrackingToken("c", parts[1], int(parts[2]))
        if len(parts) != 2:
            return None
        return TrackingToken(action, parts[1])


def signer_for(tokens: TokenCodec) -> TrackingSigner:
    """The deployment's tracking signer, keyed from its JWT signing key."""
    return TrackingSigner(tokens.derive_key(KEY_LABEL))
