"""Helpers of the contacts tests: paths and a contact-making call."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.users import bearer

CONTACTS = "/sandbox/api/v4/contacts"
LISTS = "/sandbox/api/v4/lists"
IMPORT = "/sandbox/api/v4/contacts/import"


async def make_contact(client: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    answer = await client.post(CONTACTS, json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def listed(
    client: httpx.AsyncClient, token: str, path: str = CONTACTS, **params: Any
) -> dict[str, Any]:
    answer = await client.get(path, params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]
