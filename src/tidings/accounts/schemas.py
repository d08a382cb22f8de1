"""Bodies of the account endpoint."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tidings.core.environments import Environment
from tidings.http.schemas import ApiModel


class UserOut(ApiModel):
    id: str = Field(examples=["usr_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    username: str


class AccountOut(ApiModel):
    id: str = Field(examples=["acc_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    name: str
    environment: Environment
    user: UserOut
    credits: float = Field(
        description="Credit balance; production sends spend it, the sandbox never does.",
        examples=[250.0],
    )
    created_at: datetime
