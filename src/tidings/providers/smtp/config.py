"""The ``smtp`` kind's config (spec section 13): one relay, how to reach and trust it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from tidings.providers.registry import KindConfig


class SmtpConfig(KindConfig):
    """``security``: ``starttls`` (upgrade on port 587, refused if the relay does not
    offer it), ``tls`` (implicit TLS, port 465) or ``none`` (a relay on a trusted
    network only). Certificates are always verified: ``tlsCaFile`` names a PEM bundle
    to trust for a private relay; there is no switch to skip verification."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password: SecretStr | None = None
    tls_ca_file: str | None = None
    max_connections: int = Field(default=4, ge=1, le=64)
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    helo_name: str | None = Field(default=None, max_length=253)
    request_dsn: bool = True

    @field_validator("tls_ca_file")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value} is not a readable file")
        return value
