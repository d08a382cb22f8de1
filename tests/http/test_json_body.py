"""Bodies parsed by pydantic's JSON parser answer as FastAPI's own handling does."""

from __future__ import annotations

import gc

import httpx
import pytest
from fastapi.exceptions import RequestValidationError

from tests.support.users import TestUser, bearer, login
from tidings.bulk.schemas import SmsBulkRequest
from tidings.core.collection import collection_paused
from tidings.http.json_body import parse_json_body

BULK = "/sandbox/api/v4/sms/bulk"


def test_a_parsed_body_holds_no_lone_surrogates() -> None:
    parsed = parse_json_body(SmsBulkRequest, b'{"body": "Hi", "recipients": [{"to": "+1"}]}')
    assert parsed.body == "Hi" and parsed.recipients is not None
    assert parsed.lone_surrogates_possible is False


def test_a_lone_surrogate_takes_the_slow_path_and_is_marked() -> None:
    raw = b'{"body": "Hi", "recipients": [{"to": "+1", "variables": {"n": "\\ud800"}}]}'
    parsed = parse_json_body(SmsBulkRequest, raw)
    assert parsed.recipients is not None
    assert parsed.recipients[0].variables["n"] == "\ud800"
    assert parsed.lone_surrogates_possible is True
    # Built any other way, the model is not vouched for either.
    assert SmsBulkRequest(body="Hi").lone_surrogates_possible is True


@pytest.mark.parametrize(
    ("raw", "loc", "kind"),
    [
        (b"", ("body",), "missing"),
        (b"  ", ("body",), "missing"),
        (b"{", ("body",), "json_invalid"),
        (b'{"body": "\\ud800" ', ("body",), "json_invalid"),
        (b'{"recipients": []}', ("body", "body"), "missing"),
        (
            b'{"body": "x", "recipients": [{"to": 5}]}',
            ("body", "recipients", 0, "to"),
            "string_type",
        ),
    ],
)
def test_refusals_name_the_field(raw: bytes, loc: tuple[object, ...], kind: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_json_body(SmsBulkRequest, raw)
    [error] = caught.value.errors()
    assert (tuple(error["loc"]), error["type"]) == (loc, kind)


async def test_bulk_answers_400_and_422_as_every_endpoint_does(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    headers = {**bearer(await login(client, user)), "Content-Type": "application/json"}
    broken = await client.post(BULK, content=b'{"body": ', headers=headers)
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_json")
    wrong = await client.post(
        BULK, content=b'{"body": "x", "recipients": [{"to": 5}]}', headers=headers
    )
    assert (wrong.status_code, wrong.json()["code"]) == (422, "validation_failed")
    assert [e["field"] for e in wrong.json()["errors"]] == ["recipients.0.to"]
    empty = await client.post(BULK, content=b"", headers=headers)
    assert (empty.status_code, empty.json()["code"]) == (422, "validation_failed")


def test_the_collector_stays_paused_until_the_last_overlapping_block_ends() -> None:
    assert gc.isenabled()
    first, second = collection_paused(), collection_paused()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
