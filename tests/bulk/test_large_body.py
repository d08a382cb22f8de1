"""A large bulk body is parsed off the event loop, with the answers of the small
bodies' parser."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from tidings.api.bulk_body import LARGE_BODY, bulk_body, parse_large_body
from tidings.bulk.schemas import EmailBulkRequest, SmsBulkRequest
from tidings.http.json_body import parse_json_body


def sms_body(count: int, **extra: Any) -> bytes:
    return json.dumps(
        {
            "body": "Hi {{name}}",
            "name": "November",
            "recipients": [
                {"to": f"+3933{index:08d}", "variables": {"name": f"N{index}"}}
                for index in range(count)
            ],
            **extra,
        }
    ).encode()


def test_the_same_model_as_the_fast_parser() -> None:
    raw = sms_body(5_000, validityPeriod=600)
    assert len(raw) > LARGE_BODY
    large = parse_large_body(SmsBulkRequest, raw)
    assert large.model_dump() == parse_json_body(SmsBulkRequest, raw).model_dump()


def errors_of(raw: bytes) -> list[tuple[tuple[object, ...], str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_large_body(SmsBulkRequest, raw)
    return [(tuple(error["loc"]), error["type"]) for error in caught.value.errors()]


def test_refusals_name_the_field_with_its_index() -> None:
    data = json.loads(sms_body(3_000))
    data["recipients"][2_500]["to"] = 5
    data["recipients"][10]["variables"] = {"name": ["x"]}
    data["validityPeriod"] = 1
    found = errors_of(json.dumps(data).encode())
    assert found == [
        (("body", "validityPeriod"), "greater_than_equal"),
        (("body", "recipients", 10, "variables", "name"), "string_type"),
        (("body", "recipients", 2_500, "to"), "string_type"),
    ]


def test_what_is_not_json_is_invalid_json() -> None:
    assert errors_of(sms_body(3_000)[:-1]) == [(("body",), "json_invalid")]
    deep = b"[" * 300_000 + b"]" * 300_000
    assert errors_of(deep) == [(("body",), "json_invalid")]
    nested = b'{"extra": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"," + sms_body(3_000)[1:]
    assert errors_of(nested) == [(("body",), "json_invalid")]


def test_a_lone_surrogate_is_kept_for_the_planner_to_refuse() -> None:
    raw = sms_body(3_000).replace(b'"N7"', b'"\\ud800"')
    parsed = parse_large_body(SmsBulkRequest, raw)
    assert parsed.recipients is not None
    assert parsed.recipients[7].variables["name"] == "\ud800"
    assert parsed.lone_surrogates_possible is True


def request_with(raw: bytes) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


async def test_the_event_loop_runs_while_a_large_body_is_parsed() -> None:
    raw = json.dumps(
        {
            "from": "news@example.com",
            "subject": "News",
            "text": "Hello",
            "recipients": [{"to": f"r{index}@example.com"} for index in range(100_000)],
        }
    ).encode()
    turns = 0
    parsing = True

    async def count_turns() -> None:
        nonlocal turns
        while parsing:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    started = turns
    parsed = await bulk_body(EmailBulkRequest)(request_with(raw))
    parsing = False
    await counter
    assert parsed.recipients is not None and len(parsed.recipients) == 100_000
    # Parsed on the loop's thread, the parse would leave it no turn at all.
    assert turns - started >= 3
