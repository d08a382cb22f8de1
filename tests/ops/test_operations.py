"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import httpx


async def test_healthz(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert answer.status_code == 200 and answer.json()["database"] == "ok"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/sandbox/api/v4/account")
    await client.get("/api/v4/nope")
    text = (await client.get("/metrics")).text
    assert (
        'tidings_http_requests_total{method="GET",route="/api/v4/account",status="401"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "tidings_http_request_duration_seconds_bucket" in text
