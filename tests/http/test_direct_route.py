"""A direct route answers exactly as FastAPI's own handling of the same endpoint,
and the OpenAPI document does not change; routes it cannot call directly are
left to FastAPI."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from tests.support.users import TestUser, bearer, login
from tidings.api.direct_route import DirectRoute, plan
from tidings.api.sms import router as sms_router
from tidings.http.problems import install_problem_handlers
from tidings.http.schemas import ApiRequest


class Body(ApiRequest):
    to: str = Field(min_length=1, max_length=32)
    count: int | None = Field(default=None, ge=1)


async def echo(body: Body, request: Request) -> JSONResponse:
    return JSONResponse({"to": body.to, "count": body.count, "path": request.url.path})


def twin_apps() -> tuple[FastAPI, FastAPI]:
    apps = []
    for route_class in (DirectRoute, None):
        router = APIRouter(route_class=route_class) if route_class else APIRouter()
        router.add_api_route("/echo", echo, methods=["POST"])
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(router)
        apps.append(app)
    return apps[0], apps[1]


BODIES = [
    b'{"to": "+1"}',
    b'{"to": "+1", "count": 3}',
    b'{"to": ""}',
    b'{"to": 5}',
    b'{"count": 0}',
    b'{"to": "+1", "text": "typo"}',
    b'{"to": "+1", "count": "x"}',
    b"[]",
    b'"text"',
    b"",
    b"{",
    b'{"to": "\\ud800"}',
]


@pytest.mark.parametrize("raw", BODIES)
async def test_answers_as_fastapi_does(raw: bytes) -> None:
    direct, usual = twin_apps()
    answers = []
    for app in (direct, usual):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers.append(
                await client.post(
                    "/echo", content=raw, headers={"Content-Type": "application/json"}
                )
            )
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].json() == answers[1].json()


def test_the_sms_send_is_direct_and_the_report_is_not() -> None:
    routes = {route.path: route for route in sms_router.routes}
    assert plan(routes["/api/v4/sms/send"].dependant) is not None  # type: ignore[attr-defined]
    assert plan(routes["/api/v4/sms/reports/{id}"].dependant) is None  # type: ignore[attr-defined]


def test_the_openapi_document_is_the_same() -> None:
    direct, usual = twin_apps()
    assert direct.openapi() == usual.openapi()


async def test_the_sms_send_refuses_as_before(client: httpx.AsyncClient, user: TestUser) -> None:
    send = "/sandbox/api/v4/sms/send"
    answer = await client.post(send, json={"to": "+393331234567", "body": "Hi"})
    assert answer.status_code == 401
    headers = bearer(await login(client, user))
    answer = await client.post(send, json={"to": "+393331234567", "text": "Hi"}, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_failed"
    assert {error["field"] for error in answer.json()["errors"]} == {"body", "text"}
    answer = await client.post(send, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "sent"
