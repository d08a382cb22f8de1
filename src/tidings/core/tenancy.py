"""Whose data a use case touches: one account, in one environment."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.core.environments import Environment


@dataclass(frozen=True, slots=True)
class TenantScope:
    account_id: str
    environment: Environment
