"""The two environments every request, token and row belongs to (spec section 2)."""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


SANDBOX_PREFIX = "/sandbox"
