"""Chat-box tokens: signed, expiring JWTs that open one WhatsApp chat in one environment.

A chat-box token is not an access token, and each side refuses the other's:

- its header ``typ`` is ``widget+jwt`` (access tokens are ``at+jwt``) and its ``aud``
  is the widget audience, and
- it is signed with a key derived from the deployment's signing key
  (``HMAC(signing key, label)``), so even a codec that skipped the ``typ`` check
  could not verify one as the other.

Claims: ``sub`` (the user who made it), ``acc``, ``env``, ``chat`` (the contact's E.164
number), ``ro`` (read-only), ``thm`` (theme), ``ori`` (origins allowed to frame the
page, empty for any), ``iat``, ``exp``, ``jti``, ``iss``, ``aud``; all are required.
The token travels in the page's URL: whoever holds it can read (and, unless
read-only, write to) that one chat until it expires, which is why lifetimes are
bounded by a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from tidings.auth.tokens import ALGORITHMS, TokenCodec
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import Unauthorized
from tidings.core.ids import new_id

WIDGET_TOKEN_TYPE = "widget+jwt"  # noqa: S105 - a JWT "typ", not a secret
WIDGET_AUDIENCE = "tidings-widget"
KEY_LABEL = b"tidings widget token v1"
REQUIRED_CLAIMS = ["sub", "acc", "env", "chat", "iat", "exp", "jti", "iss", "aud"]

Theme = Literal["light", "dark"]


@dataclass(frozen=True, slots=True)
class WidgetClaims:
    """What a chat-box token grants: one chat of one account, in one environment."""

    user_id: str
    account_id: str
    environment: Environment
    contact: str
    read_only: bool
    theme: Theme
    allowed_origins: tuple[str, ...]
    jti: str
    issued_at: datetime
    expires_at: datetime


class WidgetTokenCodec:
    def __init__(self, tokens: TokenCodec, *, issuer: str, clock: Clock) -> None:
        self._key = tokens.derive_key(KEY_LABEL)
        self._issuer = issuer
        self._clock = clock

    def issue(
        self,
        *,
        user_id: str,
        account_id: str,
        environment: Environment,
        contact: str,
        read_only: bool,
        theme: Theme,
        allowed_origins: tuple[str, ...],
        lifetime: int,
    ) -> tuple[str, WidgetClaims]:
        now = self._clock.now().replace(microsecond=0)
        claims = WidgetClaims(
            user_id=user_id,
            account_id=account_id,
            environment=environment,
            contact=contact,
            read_only=read_only,
            theme=theme,
            allowed_origins=allowed_origins,
            jti=new_id("tok"),
            issued_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
        payload = {
            "sub": user_id,
            "acc": account_id,
            "env": environment.value,
            "chat": contact,
            "ro": read_only,
            "thm": theme,
            "ori": list(allowed_origins),
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.jti,
            "iss": self._issuer,
            "aud": WIDGET_AUDIENCE,
        }
        token = jwt.encode(
            payload, self._key, algorithm="HS256", headers={"typ": WIDGET_TOKEN_TYPE}
        )
        return token, claims

    def decode(self, token: str) -> WidgetClaims:
        """The token's claims, or :class:`Unauthorized` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != WIDGET_TOKEN_TYPE:
                raise Unauthorized(
                    "This is not a chat-box token; create one with "
                    "POST /api/v4/iframes/whatsapp/chat-box."
                )
            payload = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                audience=WIDGET_AUDIENCE,
                issuer=self._issuer,
                # Expiry is checked against the injected clock below, like every "now".
                options={"require": REQUIRED_CLAIMS, "verify_exp": False},
            )
        except jwt.InvalidTokenError:
            raise Unauthorized(
                "The chat-box token is malformed or its signature is wrong."
            ) from None
        try:
            claims = WidgetClaims(
                user_id=str(payload["sub"]),
                account_id=str(payload["acc"]),
                environment=Environment(payload["env"]),
                contact=str(payload["chat"]),
                read_only=bool(payload.get("ro", True)),
                theme="dark" if payload.get("thm") == "dark" else "light",
                allowed_origins=tuple(str(origin) for origin in payload.get("ori") or ()),
                jti=str(payload["jti"]),
                issued_at=datetime.fromtimestamp(int(payload["iat"]), tz=UTC),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=UTC),
            )
        except (ValueError, TypeError):
            raise Unauthorized("The chat-box token carries invalid claims.") from None
        if claims.expires_at <= self._clock.now():
            raise Unauthorized(
                "This chat box has expired; ask the site that showed it for a new one.",
                code="token_expired",
            )
        return claims
