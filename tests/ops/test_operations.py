"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.processes import free_port
from tests.support.sockets import handed_to_a_worker
from tidings.app import create_app
from tidings.http.reuse_port import REUSE_PORT, reuse_port_socket


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


@pytest.mark.skipif(not REUSE_PORT, reason="a socket per worker: Linux only")
async def test_readyz_answers_503_until_every_worker_listens(
    data_dir: Path, sqlite_url: tuple[str, str | None]
) -> None:
    # As ``serve --workers 2`` runs it: the supervisor's socket bound, not listening,
    # and each worker's socket listening once that worker has started.
    port = free_port()
    app = create_app(make_settings(data_dir, sqlite_url, dispatch=False, serve_workers=2))
    await migrate_to_head(app)
    with reuse_port_socket("127.0.0.1", port) as supervisor:
        first, second = (handed_to_a_worker(supervisor) for _ in range(2))
        try:
            first.listen(8)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(transport=transport, base_url=base) as client:
                    starting = await client.get("/readyz")
                    alive = await client.get("/healthz")
                    second.listen(8)
                    ready = await client.get("/readyz")
                    second.close()
                    # Asked once all listened, not again: a worker started again
                    # later listens within moments.
                    still = await client.get("/readyz")
        finally:
            first.close()
            second.close()
    assert starting.status_code == 503
    assert starting.json() == {"status": "starting", "workers": {"listening": 1, "expected": 2}}
    assert alive.status_code == 200
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert still.status_code == 200


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/sandbox/api/v4/account")
    await client.get("/api/v4/nope")
    text = (await client.get("/metrics")).text
    assert (
        'tidings_http_requests_total{method="GET",route="/api/v4/account",status="401"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "tidings_http_request_duration_seconds_bucket" in text
