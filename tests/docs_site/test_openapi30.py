"""The 3.1 → 3.0.3 conversion: a FastAPI app exercising the pydantic 2 shapes the API
uses must come out as a document openapi-spec-validator's 3.0 validator accepts, with the
conversions a 3.0 reader relies on (nullable, enum, example, boolean exclusive bounds)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import Body, Depends, FastAPI, Header, Query
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator
from pydantic import BaseModel, Field, Json

from tidings.docs_site.openapi import (
    BEARER_SCHEME_NAME,
    build_openapi_30,
    convert_to_openapi_30,
    with_bearer_scheme,
    with_servers,
)
from tidings.docs_site.schema30 import convert_schema
from tidings.docs_site.urls import SiteRoots


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    SMS = "sms"


class Media(BaseModel):
    type: Literal["image", "document", "audio", "video"]
    url: str = Field(examples=["https://example.com/a.png"])
    caption: str | None = None


class TextContent(BaseModel):
    kind: Literal["text"]
    body: str = Field(min_length=1, max_length=4096, examples=["Hello!"])


class TemplateContent(BaseModel):
    kind: Literal["template"]
    name: str
    parameters: dict[str, list[str]] = {}


Content = Annotated[TextContent | TemplateContent, Field(discriminator="kind")]


class SendIn(BaseModel):
    to: str = Field(pattern=r"^\+?[0-9]{6,15}$", examples=["+393331234567"])
    content: Content
    fallback: Content | None = None
    media: Media | None = None
    reply_to: str | None = Field(default=None, alias="replyTo", description="A message id.")
    tags: list[str] | None = None
    variables: dict[str, Any] = {}
    validity: Annotated[int, Field(gt=0, lt=604800)] = 3600
    score: Annotated[float, Field(ge=0, le=1)] = 0.5
    attachment: bytes | None = None
    pair: tuple[int, str] | None = None
    channel: Channel = Channel.WHATSAPP
    answer: Literal["yes", None] = None
    price: Decimal = Decimal("0.05")
    meta: Json[dict[str, int]] | None = None
    scheduled_at: datetime | None = Field(default=None, alias="scheduledAt")
    nothing: None = None


class MessageOut(BaseModel):
    id: str = Field(examples=["msg_01J0000000000000000000000"])
    status: Literal["queued", "sent", "failed"]
    error: dict[str, str] | None = None
    media: Media | None = None
    segments: int = Field(ge=1, examples=[1])


class Page(BaseModel):
    data: list[MessageOut]
    next_cursor: str | None = Field(alias="nextCursor")


class Delivery(BaseModel):
    type: Literal["message.delivered"]
    data: MessageOut


_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")


def shapes_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/api/v4/messages/{chat_id}", response_model=MessageOut, status_code=201)
    def send(
        chat_id: str,
        message: Annotated[
            SendIn,
            Body(openapi_examples={"text": {"summary": "Text", "value": {"to": "+1"}}}),
        ],
        prefer: Annotated[str | None, Header(examples=["respond-async"])] = None,
        _: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Any:
        raise NotImplementedError

    @app.get("/api/v4/messages", response_model=Page)
    def list_messages(
        limit: Annotated[int, Query(gt=0, le=500, examples=[50])] = 50,
        after: Annotated[str | None, Query(examples=["c_1"])] = None,
        status: Annotated[list[str] | None, Query()] = None,
        _: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Any:
        raise NotImplementedError

    @app.webhooks.post("message.delivered")
    def delivered(body: Delivery) -> None:
        raise NotImplementedError

    return app


@pytest.fixture(scope="module")
def raw_doc() -> dict[str, Any]:
    app = shapes_app()
    return get_openapi(title="T", version="1", routes=app.routes, webhooks=app.webhooks.routes)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi_30(shapes_app(), title="T", version="1", description="D")


def schemas_in(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every dict under ``node`` with its JSON path (crude, for "nowhere" assertions)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from schemas_in(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schemas_in(value, f"{path}/{index}")


def test_the_converted_document_is_valid_openapi_30(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.0.3"
    validate(doc, cls=OpenAPIV30SpecValidator)


def test_the_validator_does_reject_fastapis_31_output(raw_doc: dict[str, Any]) -> None:
    # The control for the test above: the 3.0 validator is strict enough to notice.
    relabelled = {**raw_doc, "openapi": "3.0.3"}
    with pytest.raises(Exception):  # noqa: B017 - any validation error will do
        validate(relabelled, cls=OpenAPIV30SpecValidator)


def test_converting_does_not_modify_its_input(raw_doc: dict[str, Any]) -> None:
    before = copy.deepcopy(raw_doc)
    convert_to_openapi_30(raw_doc)
    assert raw_doc == before


def test_no_31_only_construct_survives(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert '"type": "null"' not in text
    for path, node in schemas_in(doc["components"]["schemas"]):
        if path == "" or path.endswith("/properties"):
            continue  # keys there are schema and property names
        assert not {"const", "examples", "prefixItems", "contentMediaType"} & set(node), path
        assert not isinstance(node.get("type"), list), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), path
        if "$ref" in node:
            assert set(node) == {"$ref"}, path


def test_optional_fields_become_nullable(doc: dict[str, Any]) -> None:
    props = doc["components"]["schemas"]["SendIn"]["properties"]
    assert props["tags"]["type"] == "array"
    assert props["tags"]["nullable"] is True
    assert props["scheduledAt"] == {
        "type": "string",
        "format": "date-time",
        "title": "Scheduledat",
        "nullable": True,
    }
    # A $ref cannot carry siblings in 3.0: wrapped in allOf, the description kept.
    assert props["media"] == {"allOf": [{"$ref": "#/components/schemas/Media"}], "nullable": True}
    assert props["replyTo"]["description"] == "A message id."
    assert props["replyTo"]["nullable"] is True


def test_an_optional_discriminated_union_keeps_its_discriminator(doc: dict[str, Any]) -> None:
    fallback = doc["components"]["schemas"]["SendIn"]["properties"]["fallback"]
    assert fallback["nullable"] is True
    assert fallback["discriminator"]["propertyName"] == "kind"
    assert [branch["$ref"] for branch in fallback["oneOf"]] == [
        "#/components/schemas/TextContent",
        "#/components/schemas/TemplateContent",
    ]


def test_const_becomes_a_one_value_enum(doc: dict[str, Any]) -> None:
    kind = doc["components"]["schemas"]["TextContent"]["properties"]["kind"]
    assert kind["enum"] == ["text"]
    assert "const" not in kind


def test_a_nullable_enum_lists_null(doc: dict[str, Any]) -> None:
    answer = doc["components"]["schemas"]["SendIn"]["properties"]["answer"]
    assert answer["enum"] == ["yes", None]
    assert answer["nullable"] is True


def test_schema_examples_become_example(doc: dict[str, Any]) -> None:
    assert doc["components"]["schemas"]["TextContent"]["properties"]["body"]["example"] == "Hello!"
    operation = doc["paths"]["/api/v4/messages"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["example"] == 50
    assert "examples" not in limit["schema"]


def test_media_type_examples_maps_are_kept(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/api/v4/messages/{chat_id}"]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]
    assert examples["text"]["value"] == {"to": "+1"}


def test_exclusive_bounds_become_booleans(doc: dict[str, Any]) -> None:
    validity = doc["components"]["schemas"]["SendIn"]["properties"]["validity"]
    assert validity["minimum"] == 0
    assert validity["exclusiveMinimum"] is True
    assert validity["maximum"] == 604800
    assert validity["exclusiveMaximum"] is True


def test_bytes_tuples_and_json_strings(doc: dict[str, Any]) -> None:
    props = doc["components"]["schemas"]["SendIn"]["properties"]
    assert props["attachment"]["format"] == "binary"
    assert props["pair"]["items"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert props["pair"]["minItems"] == props["pair"]["maxItems"] == 2
    assert "format" not in props["meta"]  # a JSON document in a string is text, not binary


def test_webhooks_are_kept_as_x_webhooks(doc: dict[str, Any]) -> None:
    assert "webhooks" not in doc
    assert "post" in doc["x-webhooks"]["message.delivered"]


def test_httpbearer_is_published_as_bearer_auth(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {BEARER_SCHEME_NAME}
    assert schemes[BEARER_SCHEME_NAME]["scheme"] == "bearer"
    assert schemes[BEARER_SCHEME_NAME]["bearerFormat"] == "JWT"
    assert doc["paths"]["/api/v4/messages"]["get"]["security"] == [{BEARER_SCHEME_NAME: []}]


def test_bearer_auth_is_added_when_no_route_declares_one() -> None:
    doc = with_bearer_scheme({"openapi": "3.0.3", "info": {}, "paths": {}})
    assert doc["components"]["securitySchemes"][BEARER_SCHEME_NAME]["bearerFormat"] == "JWT"


def test_a_declared_bearer_auth_scheme_wins_and_gets_defaults() -> None:
    declared = {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "Mine."}}
    doc = with_bearer_scheme({"components": {"securitySchemes": declared}})
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["description"] == "Mine."
    assert scheme["bearerFormat"] == "JWT"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(
            {"type": ["string", "null"], "maxLength": 3},
            {"type": "string", "maxLength": 3, "nullable": True},
            id="type-list-nullable",
        ),
        pytest.param(
            {"type": ["string", "integer"]},
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            id="type-list-union",
        ),
        pytest.param(
            {"type": "string", "contentEncoding": "base64"},
            {"type": "string", "format": "byte"},
            id="base64",
        ),
        pytest.param(
            {"type": "string", "contentMediaType": "image/png"},
            {"type": "string", "format": "binary"},
            id="binary",
        ),
        pytest.param(
            {"type": "string", "contentMediaType": "text/csv"}, {"type": "string"}, id="text-media"
        ),
        pytest.param(
            {"type": "integer", "minimum": 5, "exclusiveMinimum": 1},
            {"type": "integer", "minimum": 5},
            id="stricter-inclusive",
        ),
        pytest.param(
            {"type": "integer", "default": None},
            {"type": "integer", "default": None, "nullable": True},
            id="default-none",
        ),
        pytest.param(
            {"if": {"type": "string"}, "then": {"minLength": 1}, "$comment": "x"}, {}, id="if-then"
        ),
        pytest.param(
            {"type": "object", "propertyNames": {"pattern": "^a"}, "dependentRequired": {}},
            {"type": "object"},
            id="dropped",
        ),
        pytest.param(
            {"type": "array", "prefixItems": [{"type": "integer"}], "items": False},
            {"type": "array", "items": {"type": "integer"}},
            id="tuple",
        ),
        pytest.param(
            {"type": "object", "patternProperties": {"^x": {"type": "integer"}}},
            {"type": "object", "additionalProperties": {"type": "integer"}},
            id="pattern-properties",
        ),
        pytest.param({"type": "array"}, {"type": "array", "items": {}}, id="array-items"),
        pytest.param(
            {"$ref": "#/components/schemas/A", "description": "d"},
            {"description": "d", "allOf": [{"$ref": "#/components/schemas/A"}]},
            id="ref-siblings",
        ),
        pytest.param({"anyOf": [{"type": "null"}]}, {"nullable": True}, id="only-null-branch"),
        pytest.param({"type": "null"}, {"enum": [None], "nullable": True}, id="null-type"),
        pytest.param({"const": None}, {"enum": [None], "nullable": True}, id="const-none"),
        pytest.param(
            {"properties": {"flag": True, "never": False}},
            {"properties": {"flag": {}, "never": {"not": {}}}},
            id="boolean-schemas",
        ),
        pytest.param(
            {"type": "string", "x-internal": True, "$id": "urn:x"},
            {"type": "string", "x-internal": True},
            id="extensions-kept",
        ),
    ],
)
def test_schema_rules(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_schema(schema) == expected


def test_properties_named_like_keywords_are_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"examples": {"type": "string"}, "const": {"type": "integer"}},
        "required": ["examples", "const"],
    }
    assert convert_schema(schema) == schema


def test_document_level_31_leftovers_are_removed() -> None:
    doc = {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "T",
            "version": "1",
            "summary": "3.1 only",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "components": {
            "pathItems": {"P": {}},
            "parameters": {"Limit": {"$ref": "#/components/parameters/L", "description": "x"}},
            "responses": {
                "Gone": {
                    "description": "Gone",
                    "headers": {"Retry-After": {"schema": {"type": ["integer", "null"]}}},
                }
            },
        },
    }
    out = convert_to_openapi_30(doc)
    assert out["openapi"] == "3.0.3"
    assert "jsonSchemaDialect" not in out
    assert out["paths"] == {}
    assert out["info"] == {"title": "T", "version": "1", "license": {"name": "Apache-2.0"}}
    assert "pathItems" not in out["components"]
    assert out["components"]["parameters"]["Limit"] == {"$ref": "#/components/parameters/L"}
    header = out["components"]["responses"]["Gone"]["headers"]["Retry-After"]
    assert header["schema"] == {"type": "integer", "nullable": True}


def _roots(*, on_sandbox: bool, production: str | None = "") -> SiteRoots:
    sandbox = "/sandbox" if production is not None else ""
    return SiteRoots("http://h", sandbox if on_sandbox else "", production, sandbox, on_sandbox)


def test_servers_put_the_sandbox_first(doc: dict[str, Any]) -> None:
    production = with_servers(doc, _roots(on_sandbox=False))["servers"]
    assert [s["url"] for s in production] == ["/sandbox", "/"]
    sandbox = with_servers(doc, _roots(on_sandbox=True))["servers"]
    assert [s["url"] for s in sandbox] == ["/sandbox", "/"]
    sandbox_host = with_servers(doc, _roots(on_sandbox=True, production=None))["servers"]
    assert [s["url"] for s in sandbox_host] == ["/"]
    assert "servers" not in doc  # the cached document is never modified
    validate(with_servers(doc, _roots(on_sandbox=True)), cls=OpenAPIV30SpecValidator)


async def test_the_product_document_is_valid_openapi_30(client: httpx.AsyncClient) -> None:
    # The real application, with every router the lead has included so far.
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    published = answer.json()
    assert published["openapi"] == "3.0.3"
    validate(published, cls=OpenAPIV30SpecValidator)
    assert "/api/v4/auth/token" in published["paths"]
    assert BEARER_SCHEME_NAME in published["components"]["securitySchemes"]
