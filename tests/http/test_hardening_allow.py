"""A 405 names every method the path accepts (issue 16, item 10), not one route's."""

from __future__ import annotations

import httpx
import pytest


def _allowed(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 405, answer.text
    assert answer.json()["code"] == "method_not_allowed"
    return {method.strip() for method in answer.headers["allow"].split(",")}


@pytest.mark.parametrize("prefix", ["", "/sandbox"])
async def test_allow_lists_every_route_of_the_path(client: httpx.AsyncClient, prefix: str) -> None:
    # GET and POST /api/v4/contacts are two routes.
    assert {"GET", "POST"} <= _allowed(await client.options(f"{prefix}/api/v4/contacts"))
    allowed = _allowed(await client.put(f"{prefix}/api/v4/contacts/ct_1"))
    assert {"GET", "PATCH", "DELETE"} <= allowed
    assert "POST" not in allowed


async def test_allow_on_a_single_route(client: httpx.AsyncClient) -> None:
    assert _allowed(await client.get("/sandbox/api/v4/auth/token")) == {"POST"}
