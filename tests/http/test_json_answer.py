"""PlainJSONResponse writes the bytes JSONResponse writes, or fails as it fails."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from tidings.http.json_answer import PlainJSONResponse

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-4, 9.99e-5, 1e-5, 1e16, 9.999e15, 1e21, 0.1, 2.5]),
    st.text(),
    st.sampled_from(["\ud800", "a\udfff", '\x00\x1f\x7f\u2028\u2029"\\/', "é😀"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.tuples(inner),
        st.dictionaries(st.integers(0, 3), inner, max_size=2),
    ),
    max_leaves=12,
)


def _render(response_class: type[JSONResponse], content: Any) -> tuple[str, Any]:
    try:
        response = response_class(content, status_code=202, headers={"Preference-Applied": "x"})
    except Exception as error:
        return "error", type(error)
    return "answer", (response.body, response.raw_headers, response.status_code)


@settings(max_examples=1500, deadline=None)
@given(content=values)
def test_the_same_bytes_or_the_same_error(content: Any) -> None:
    assert _render(PlainJSONResponse, content) == _render(JSONResponse, content)


@pytest.mark.parametrize("number", [1e-5, 1e16, 1e-7, math.inf, math.nan, 5e-324])
def test_floats_written_otherwise_are_left_to_json_dumps(number: float) -> None:
    assert _render(PlainJSONResponse, {"credits": number}) == _render(
        JSONResponse, {"credits": number}
    )


def test_a_message_answer_is_rendered_by_pydantic() -> None:
    answer = {"id": "msg_1", "credits": 0.0, "events": [{"applied": True, "event": None}]}
    assert PlainJSONResponse(answer).body == JSONResponse(answer).body
