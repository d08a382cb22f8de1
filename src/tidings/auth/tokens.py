"""JWT access tokens: issuing and strict checking (RFC 8725 practice).

Tokens are HS256 with the deployment's signing key, typed ``at+jwt``, and carry
``sub`` (user), ``acc`` (account), ``env`` (environment), ``iat``, ``exp``, ``jti``,
``iss`` and ``aud``; all are required when decoding. The accepted algorithm list
is fixed here and never taken from the token, so ``alg: none`` and algorithm
confusion are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import Unauthorized
from tidings.core.ids import new_id

ALGORITHMS = ["HS256"]
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT "typ", not a secret
MAX_REMEMBERED = 50_000
REQUIRED_CLAIMS = ["sub", "acc", "env", "iat", "exp", "jti", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    account_id: str
    environment: Environment
    jti: str
    issued_at: datetime
    expires_at: datetime


class TokenCodec:
    def __init__(self, key: bytes, *, issuer: str, audience: str, clock: Clock) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._verified: dict[str, TokenClaims] = {}

    def derive_key(self, label: bytes) -> bytes:
        """A key for another purpose (``HMAC(signing key, label)``), so the signing key
        itself is never used for anything but tokens."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def issue(
        self, *, user_id: str, account_id: str, environment: Environment, lifetime: int
    ) -> tuple[str, TokenClaims]:
        now = self._clock.now().replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id,
            account_id=account_id,
            environment=environment,
            jti=new_id("tok"),
            issued_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
        payload = {
            "sub": user_id,
            "acc": account_id,
            "env": environment.value,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.jti,
            "iss": self._issuer,
            "aud": self._audience,
        }
        token = jwt.encode(payload, self._key, algorithm="HS256", headers={"typ": TOKEN_TYPE})
        return token, claims

    def decode(self, token: str) -> TokenClaims:
        """The token's claims, or :class:`Unauthorized` saying what is wrong.

        A token that verified once is remembered (until it expires), so its
        signature is not checked again on every request; expiry still is.
        """
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at.timestamp() > time.time():
                return known
            del self._verified[token]
        claims = self._decode(token)
        if len(self._verified) >= MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != TOKEN_TYPE:
                raise Unauthorized("The token is not a Tidings access token.")
            payload = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "The token has expired; ask /api/v4/auth/token for a new one.",
                code="token_expired",
            ) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The bearer token is malformed or its signature is wrong.") from None
        try:
            environment = Environment(payload["env"])
            issued_at = datetime.fromtimestamp(int(payload["iat"]), tz=UTC)
            expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
        except (ValueError, TypeError):
            raise Unauthorized("The bearer token carries invalid claims.") from None
        return TokenClaims(
            user_id=str(payload["sub"]),
            account_id=str(payload["acc"]),
            environment=environment,
            jti=str(payload["jti"]),
            issued_at=issued_at,
            expires_at=expires_at,
        )
