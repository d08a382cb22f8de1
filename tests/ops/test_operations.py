"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.support.processes import free_port
from tidings.app import create_app


async def test_healthz(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert answer.status_code == 200 and answer.json()["database"] == "ok"


async def test_readyz_answers_503_while_the_database_is_unreachable(data_dir: Path) -> None:
    # A PostgreSQL address where nothing listens: every connection is refused.
    unreachable = (f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test", None)
    app = create_app(make_settings(data_dir, unreachable, dispatch=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert alive.status_code == 200  # alive, only not ready


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/sandbox/api/v4/account")
    await client.get("/api/v4/nope")
    text = (await client.get("/metrics")).text
    assert (
        'tidings_http_requests_total{method="GET",route="/api/v4/account",status="401"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "tidings_http_request_duration_seconds_bucket" in text
