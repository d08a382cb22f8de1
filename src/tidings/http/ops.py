"""Operations endpoints for load balancers and monitoring: health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tidings.http.reuse_port import REUSE_PORT, listening_on
from tidings.providers.repository import failing_providers

router = APIRouter(include_in_schema=False)

# Answered over plain HTTP from anywhere: load balancers and monitoring probe them so.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def workers_not_listening(request: Request) -> dict[str, int] | None:
    """With ``serve --workers N``: how many of the N workers listen on this port, while
    some do not yet (http/reuse_port.py), else None. Once all have, it is not asked
    again: a worker started again later listens within moments."""
    expected: int = request.app.state.ctx.settings.serve_workers
    port = (request.scope.get("server") or (None, None))[1]
    settled = expected <= 1 or not REUSE_PORT or request.app.state.workers_listening
    if settled or not isinstance(port, int):
        return None
    listening = listening_on(port)
    if listening >= expected:
        request.app.state.workers_listening = True
        return None
    return {"listening": listening, "expected": expected}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    starting = workers_not_listening(request)
    if starting is not None:
        return JSONResponse({"status": "starting", "workers": starting}, status_code=503)
    try:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__}, status_code=503
        )
    down = ctx.runtime.down()
    async with ctx.sessions() as session:
        failing = await failing_providers(session)
    answer = {
        "status": "unavailable" if down else "ready",
        "database": "ok",
        # Background tasks of this process that are not running (restarting).
        "tasks": down,
        # Providers that are failing are reported; the process still serves.
        "providers": {"failing": failing},
    }
    return JSONResponse(answer, status_code=503 if down else 200)


@router.get("/metrics")
async def metrics(request: Request) -> object:
    providers = request.app.state.ctx.runtime.metrics
    return await request.app.state.metrics.endpoint(
        request, counted=[providers.registry], live=[providers.live]
    )
