"""Production providers for tests, added through the same service as the API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tidings.core.environments import Environment
from tidings.providers.models import ProviderRow
from tidings.providers.schemas import ProviderCreate
from tidings.providers.service import TenantScope


async def add_provider(
    app: FastAPI,
    account_id: str,
    channel: str,
    kind: str = "simulator",
    *,
    config: dict[str, Any] | None = None,
    priority: int = 1,
    name: str | None = None,
) -> str:
    """Add a production provider to the account; its id."""
    row = await app.state.ctx.runtime.provider_service.create(
        TenantScope(account_id, Environment.PRODUCTION),
        ProviderCreate(
            channel=channel,  # type: ignore[arg-type]
            kind=kind,
            name=name or f"{kind} {channel} {priority}",
            priority=priority,
            config=config or {},
        ),
    )
    assert isinstance(row, ProviderRow)
    return row.id
