"""Bodies of the token endpoints (spec section 3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tidings.http.schemas import ApiModel, ApiRequest


class TokenRequest(ApiRequest):
    username: str = Field(min_length=1, max_length=254, examples=["demo@example.com"])
    password: str = Field(min_length=1, max_length=1024, examples=["your-password"])
    expires_in: int | None = Field(
        default=None,
        ge=60,
        description="Token lifetime in seconds, up to the deployment's maximum.",
        examples=[3600],
    )


class TokenResponse(ApiModel):
    token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9..."])
    expires_in: int = Field(examples=[3600])
    type: Literal["Bearer"] = "Bearer"


class RevokeResponse(ApiModel):
    revoked: bool = True
