"""Property-based contract test of the real app: schemathesis generates requests for every
operation of the served OpenAPI document, in production and under the ``/sandbox`` prefix,
sends them in-process (ASGI) with a logged-in user's bearer token, and checks that no
answer is a 5xx and that every answer's status, content type and body are the documented
ones. A second test validates the served document itself as OpenAPI 3.0 and checks that
every operation is described, has examples for its input and documents its problem
answers.

The schemathesis app runs on schemathesis' own event loop (it starts the app's lifespan
there, so the background dispatcher runs as in production); migrations, the user and the
logins are done beforehand on a separate app instance over the same database, so that no
database connection crosses event loops.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_settings
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.environments import Environment
from tidings.db import migrate
from tidings.settings import Settings

# The Host schemathesis' ASGI client sends; https, because plain HTTP from a non-loopback
# client ("testclient") is refused with 403 https_required.
BASE_URL = f"https://{schemathesis_asgi.HOST}"
PROBLEM_JSON = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REVOKE = ("POST", "/api/v4/auth/revoke")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass
class Target:
    """The app under test and what a generated call needs to be authenticated."""

    app: FastAPI
    user_id: str
    account_id: str
    tokens: dict[Environment, str]

    def fresh_token(self, environment: Environment) -> str:
        """A token nobody else uses, for the operation that revokes the presented one."""
        token, _ = self.app.state.ctx.tokens.issue(
            user_id=self.user_id,
            account_id=self.account_id,
            environment=environment,
            lifetime=3600,
        )
        return str(token)


def _settings(data_dir: Path) -> Settings:
    return make_settings(
        data_dir,
        (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None),
        rate_limit={"per_minute": 10**6, "anonymous_per_minute": 10**6},
        login_throttle={
            "slowdown_seconds": 0,
            "max_failures_per_username": 10**6,
            "max_failures_per_address": 10**6,
        },
    )


async def _prepare(settings: Settings) -> tuple[dict[str, Any], str, str, dict[Environment, str]]:
    """Migrate, create the user, log in to both environments, fetch the document."""
    setup = create_app(settings)
    try:
        await migrate.upgrade(setup.state.ctx.engine)
        user = await create_test_user(setup)
        transport = httpx.ASGITransport(app=setup, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            tokens = {
                Environment.PRODUCTION: await login(client, user, base=""),
                Environment.SANDBOX: await login(client, user, base="/sandbox"),
            }
        return await _fetch_document(setup), user.user_id, user.account_id, tokens
    finally:
        await setup.state.ctx.engine.dispose()


def _document_at_collection() -> dict[str, Any]:
    """The served document, fetched at import time so that pytest collects one test per
    operation (schemathesis' lazy ``from_fixture`` loader reads ``Node._nodeid``, which
    pytest 9 no longer has). This app never opens its database and lives in a throwaway
    directory; the app under test is built by the ``target`` fixture and is checked to
    serve the same document."""

    async def fetch(data_dir: Path) -> dict[str, Any]:
        app = create_app(Settings(data_dir=data_dir, dispatch=False))
        try:
            return await _fetch_document(app)
        finally:
            await app.state.ctx.engine.dispose()

    with tempfile.TemporaryDirectory(prefix="tidings-openapi-") as directory:
        return asyncio.run(fetch(Path(directory)))


async def _fetch_document(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


DOCUMENT = _document_at_collection()


def _schema(base_url: str) -> Any:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.config.update(base_url=base_url)
    return schema


production = _schema(BASE_URL)
sandbox = _schema(f"{BASE_URL}/sandbox")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The app under test, migrated, with a user logged in to both environments."""
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    data_dir.mkdir()
    settings = _settings(data_dir)
    document, user_id, account_id, tokens = asyncio.run(_prepare(settings))
    assert document == DOCUMENT, "the app under test serves another document"
    app = create_app(settings)
    try:
        yield Target(app, user_id, account_id, tokens)
    finally:
        # Ends the lifespan schemathesis started on its event loop (dispatcher, engine).
        schemathesis_asgi.shutdown_lifespans()


FUZZ_SETTINGS = settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def _call_and_check(case: Any, target: Target, environment: Environment) -> None:
    if (case.method.upper(), case.path) == REVOKE:
        token = target.fresh_token(environment)
    else:
        token = target.tokens[environment]
    # app=: the calls go in-process to the app under test, on schemathesis' event loop.
    case.call_and_validate(headers=bearer(token), checks=CHECKS, app=target.app, timeout=3)


@production.parametrize()
@FUZZ_SETTINGS
def test_production_api_conforms_to_its_document(case: Any, target: Target) -> None:
    _call_and_check(case, target, Environment.PRODUCTION)


@sandbox.parametrize()
@FUZZ_SETTINGS
def test_sandbox_api_conforms_to_its_document(case: Any, target: Target) -> None:
    _call_and_check(case, target, Environment.SANDBOX)


# --- The document itself ---------------------------------------------------------------


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < 20:
        ref = str(node["$ref"])
        assert ref.startswith("#/"), ref
        current: Any = document
        for part in ref[2:].split("/"):
            current = current[part.replace("~1", "/").replace("~0", "~")]
        node = current
        seen += 1
    return node


def _schema_has_example(document: Mapping[str, Any], schema: Any, depth: int = 0) -> bool:
    """Whether a schema, its properties, items or sub-schemas carry an example."""
    schema = _resolve(document, schema)
    if not isinstance(schema, Mapping) or depth > 6:
        return False
    if "example" in schema or schema.get("examples"):
        return True
    children: list[Any] = list((schema.get("properties") or {}).values())
    for key in ("allOf", "anyOf", "oneOf"):
        children.extend(schema.get(key) or [])
    if isinstance(schema.get("items"), Mapping):
        children.append(schema["items"])
    return any(_schema_has_example(document, child, depth + 1) for child in children)


def _media_has_example(document: Mapping[str, Any], media: Any) -> bool:
    media = _resolve(document, media)
    return bool(
        "example" in media
        or media.get("examples")
        or _schema_has_example(document, media.get("schema"))
    )


def _parameter_has_example(document: Mapping[str, Any], parameter: Any) -> bool:
    parameter = _resolve(document, parameter)
    if "example" in parameter or parameter.get("examples"):
        return True
    if any(_media_has_example(document, m) for m in (parameter.get("content") or {}).values()):
        return True
    return _schema_has_example(document, parameter.get("schema"))


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _documented_problem(
    document: Mapping[str, Any], operation: Mapping[str, Any], status: int
) -> bool:
    response = _resolve(document, (operation.get("responses") or {}).get(str(status)))
    if not isinstance(response, Mapping):
        return False
    media = (response.get("content") or {}).get(PROBLEM_JSON)
    return isinstance(media, Mapping) and isinstance(media.get("schema"), Mapping)


async def test_the_served_document_is_valid_and_fully_documented(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.0")
    validate(document, cls=OpenAPIV30SpecValidator)

    global_security = document.get("security")
    problems: list[str] = []
    operations = list(_operations(document))
    assert operations
    for method, path, operation in operations:
        name = f"{method} {path}"
        if not (operation.get("summary") or operation.get("description")):
            problems.append(f"{name}: no summary or description")
        parameters = [_resolve(document, p) for p in operation.get("parameters") or []]
        body = _resolve(document, operation.get("requestBody"))
        body_media = (body or {}).get("content") or {}
        if body_media and not any(_media_has_example(document, m) for m in body_media.values()):
            problems.append(f"{name}: the request body has no example")
        if parameters:
            missing = [p["name"] for p in parameters if not _parameter_has_example(document, p)]
            if len(missing) == len(parameters):
                problems.append(f"{name}: no parameter has an example ({', '.join(missing)})")
        security = operation.get("security", global_security)
        authenticated = bool(security) and any(requirement for requirement in security)
        if path.startswith("/api/v4/") and path != "/api/v4/auth/token" and not authenticated:
            problems.append(f"{name}: not marked as needing a bearer token")
        if authenticated and not _documented_problem(document, operation, 401):
            problems.append(f"{name}: no 401 problem+json answer documented")
        if (parameters or body_media) and not _documented_problem(document, operation, 422):
            problems.append(f"{name}: no 422 problem+json answer documented")
    assert not problems, "\n".join(problems)
