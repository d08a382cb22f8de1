"""Property-based contract test of the real app, and a check of its OpenAPI document.

schemathesis generates requests for every operation of the served OpenAPI document, in
production and under the ``/sandbox`` prefix, sends them in-process (ASGI) with a
logged-in user's bearer token, and checks that no answer is a 5xx and that each answer's
status, content type and body are the documented ones. The user's account has simulated
production providers and plenty of credits, so production sends take their real path
instead of stopping at 503 ``channel_not_configured`` or 402.

Each test item gets a fresh app over one migrated database: schemathesis starts the
app's lifespan on its own event loop (so the background dispatcher runs, as in
production) and ends it after every item, and a lifespan runs only once per app.
Migrations, the user and the logins are done beforehand on a separate app instance, so
no database connection crosses event loops.

The last test validates the served document with openapi-spec-validator's 3.0 validator
and checks that every operation is described, has examples for its input and documents
its problem answers.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
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
from tests.support.processes import TEST_SECRETS_KEYS
from tests.support.providers import add_provider
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.credits.repository import CreditRepository
from tidings.db import migrate
from tidings.providers.registry import CHANNELS
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
CREDITS = Decimal(10**6)


@dataclass
class Deployment:
    """The migrated database and the user every generated call is made as."""

    settings: Settings
    user_id: str
    account_id: str
    tokens: dict[Environment, str]


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


async def _fetch_document(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


async def _prepare(settings: Settings) -> tuple[Deployment, dict[str, Any]]:
    """Migrate; create the user, with simulated production providers and credits; log in
    to both environments; fetch the document."""
    setup = create_app(settings)
    ctx = setup.state.ctx
    try:
        await migrate.upgrade(ctx.engine)
        user = await create_test_user(setup)
        for channel in CHANNELS:
            await add_provider(setup, user.account_id, channel)
        now = SystemClock().now()
        async with ctx.sessions() as session:
            await CreditRepository(session).add(user.account_id, CREDITS, reason="top-up", at=now)
            await session.commit()
        transport = httpx.ASGITransport(app=setup, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            tokens = {
                Environment.PRODUCTION: await login(client, user, base=""),
                Environment.SANDBOX: await login(client, user, base="/sandbox"),
            }
        deployment = Deployment(settings, user.user_id, user.account_id, tokens)
        return deployment, await _fetch_document(setup)
    finally:
        await ctx.engine.dispose()


def _document_at_collection() -> dict[str, Any]:
    """The served document, fetched at import time so that pytest collects one test per
    operation (schemathesis' lazy ``from_fixture`` loader reads ``Node._nodeid``, which
    pytest 9 no longer has). This app never opens its database and lives in a throwaway
    directory; the ``deployment`` fixture checks that the app under test serves the same
    document."""

    async def fetch(data_dir: Path) -> dict[str, Any]:
        database = f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}"
        app = create_app(
            Settings(
                data_dir=data_dir,
                database_url=database,
                dispatch=False,
                secrets_keys=TEST_SECRETS_KEYS,
            )
        )
        try:
            return await _fetch_document(app)
        finally:
            await app.state.ctx.engine.dispose()

    with tempfile.TemporaryDirectory(prefix="tidings-openapi-") as directory:
        return asyncio.run(fetch(Path(directory)))


DOCUMENT = _document_at_collection()


def _schema(base_url: str) -> Any:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.config.update(base_url=base_url)
    return schema


production = _schema(BASE_URL)
sandbox = _schema(f"{BASE_URL}/sandbox")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    data_dir.mkdir()
    prepared, document = asyncio.run(_prepare(_settings(data_dir)))
    # The servers' descriptions say which providers production has: they differ.
    assert _without_servers(document) == _without_servers(DOCUMENT), (
        "the app under test serves another document"
    )
    return prepared


def _without_servers(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "servers"}


@pytest.fixture
def api_app(deployment: Deployment) -> Iterator[FastAPI]:
    """A fresh app over the shared database; schemathesis starts its lifespan."""
    app = create_app(deployment.settings)
    try:
        yield app
    finally:
        # schemathesis ends it after each item too; this is a no-op then.
        schemathesis_asgi.shutdown_lifespans()


FUZZ_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # api_app is per item on purpose: one app (and lifespan) serves all its examples.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def _call_and_check(
    case: Any, app: FastAPI, deployment: Deployment, environment: Environment
) -> None:
    if (case.method.upper(), case.path) == REVOKE:
        # A token nobody else uses: this operation revokes the token it is called with.
        token, _ = app.state.ctx.tokens.issue(
            user_id=deployment.user_id,
            account_id=deployment.account_id,
            environment=environment,
            lifetime=3600,
        )
    else:
        token = deployment.tokens[environment]
    # app=: in-process, to this item's app, on schemathesis' event loop.
    case.call_and_validate(headers=bearer(token), checks=CHECKS, app=app)


@production.parametrize()
@FUZZ_SETTINGS
def test_production_api_conforms_to_its_document(
    case: Any, api_app: FastAPI, deployment: Deployment
) -> None:
    _call_and_check(case, api_app, deployment, Environment.PRODUCTION)


@sandbox.parametrize()
@FUZZ_SETTINGS
def test_sandbox_api_conforms_to_its_document(
    case: Any, api_app: FastAPI, deployment: Deployment
) -> None:
    _call_and_check(case, api_app, deployment, Environment.SANDBOX)


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


def _problem_gap(document: Mapping[str, Any], operation: Mapping[str, Any], status: int) -> str:
    """What is missing for ``status`` to be a documented problem+json answer ("" if nothing)."""
    response = _resolve(document, (operation.get("responses") or {}).get(str(status)))
    if not isinstance(response, Mapping):
        return f"no {status} answer documented"
    content = response.get("content") or {}
    media = _resolve(document, content.get(PROBLEM_JSON))
    if isinstance(media, Mapping) and isinstance(media.get("schema"), Mapping):
        return ""
    elsewhere = sorted(k for k, v in content.items() if isinstance(v, Mapping) and "schema" in v)
    return (
        f"the {status} answer has no schema under {PROBLEM_JSON}"
        + (f" (it is under {', '.join(elsewhere)})" if elsewhere else "")
        + ", so the error body is neither described to clients nor validated"
    )


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
        if authenticated and (gap := _problem_gap(document, operation, 401)):
            problems.append(f"{name}: {gap}")
        if (parameters or body_media) and (gap := _problem_gap(document, operation, 422)):
            problems.append(f"{name}: {gap}")
    assert not problems, "\n".join(problems)
