"""The pages install_docs serves: OpenAPI 3.0.3, Swagger UI from local files only, and the
landing page with this deployment's base URLs, under the /sandbox prefix too, with CSP
headers and no reflection of a hostile Host header."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from tidings.core.environments import Environment
from tidings.docs_site import install_docs, openapi_document
from tidings.docs_site.landing import render_landing
from tidings.docs_site.swagger import render_swagger_page
from tidings.docs_site.urls import SiteRoots

HOST = "docs.example.test"


class Token(BaseModel):
    token: str
    expires_in: int | None = None


def docs_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/api/v4/auth/token")
    def token() -> Token:
        return Token(token="t")

    install_docs(app, title="Tidings <API>", version="9.9", description="Docs test.")
    return app


class SandboxHost:
    """What EnvironmentMiddleware does for a configured sandbox host (no prefix)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["environment"] = Environment.SANDBOX
        await self.app(scope, receive, send)


class Tags(HTMLParser):
    """Collects the start tags of a page with their attributes, and inline script text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = (tag, dict(attrs)) if tag in ("script", "style") else None

    def handle_data(self, data: str) -> None:
        if self._open and self._open[0] == "script" and "src" not in self._open[1]:
            self.inline_scripts.append((self._open[1], data))
        if self._open and self._open[0] == "style":
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def resource_urls(tags: Tags) -> list[str]:
    urls = [attrs.get("src") or attrs.get("href") for tag, attrs in tags.tags if tag != "a"]
    return [url for url in urls if url]


@pytest.fixture
def app() -> FastAPI:
    return docs_app()


@pytest.fixture
async def docs_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
        yield client


@pytest.fixture
async def sandbox_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # What the deployment does for /sandbox/...: root_path names the prefix and path
    # keeps it (ASGI), so routing sees the path below it.
    transport = httpx.ASGITransport(app=app, root_path="/sandbox")
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{HOST}") as client:
        yield client


async def test_openapi_json_is_valid_30_and_lists_both_servers(
    docs_client: httpx.AsyncClient,
) -> None:
    answer = await docs_client.get("/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"] == "3.0.3"
    validate(doc, cls=OpenAPIV30SpecValidator)
    # The sandbox first: Swagger's "Try it out" uses it, and it sends nothing.
    assert [server["url"] for server in doc["servers"]] == ["/sandbox", "/"]
    assert set(doc["paths"]) == {"/api/v4/auth/token"}  # the docs routes stay out
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_openapi_json_under_the_sandbox_prefix_puts_the_sandbox_first(
    sandbox_client: httpx.AsyncClient,
) -> None:
    doc = (await sandbox_client.get("/sandbox/openapi.json")).json()
    assert [server["url"] for server in doc["servers"]] == ["/sandbox", "/"]
    validate(doc, cls=OpenAPIV30SpecValidator)


async def test_the_document_is_generated_once(app: FastAPI, docs_client: httpx.AsyncClient) -> None:
    await docs_client.get("/openapi.json")
    cached = openapi_document(app, title="ignored", version="0", description="")
    await docs_client.get("/openapi.json")
    assert openapi_document(app, title="ignored", version="0", description="") is cached
    assert cached["info"]["title"] == "Tidings <API>"


@pytest.mark.parametrize("prefix", ["", "/sandbox"])
async def test_swagger_ui_loads_only_local_assets(app: FastAPI, prefix: str) -> None:
    transport = httpx.ASGITransport(app=app, root_path=prefix)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
        await _check_swagger_page(client, prefix)


async def _check_swagger_page(client: httpx.AsyncClient, prefix: str) -> None:
    answer = await client.get(f"{prefix}/docs")
    assert answer.status_code == 200
    html = answer.text
    assert "http://" not in html and "https://" not in html
    tags = parse(html)
    urls = resource_urls(tags)
    assert f"{prefix}/docs/assets/swagger-ui-bundle.js" in urls
    assert f"{prefix}/docs/assets/swagger-ui.css" in urls
    assert all(url.startswith(f"{prefix}/docs/") for url in urls), urls
    # The only inline script is a JSON data block, so CSP can forbid inline scripts.
    [(attrs, config_text)] = tags.inline_scripts
    assert attrs["type"] == "application/json"
    config = json.loads(config_text)
    assert config["url"] == f"{prefix}/openapi.json"
    assert config["validatorUrl"] is None  # else validator.swagger.io is called
    assert config["queryConfigEnabled"] is False
    assert "Tidings &lt;API&gt;" in html

    csp = answer.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert "default-src 'none'" in csp

    types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = next(kind for suffix, kind in types.items() if url.endswith(suffix))
        assert expected in asset.headers["content-type"], url


async def test_only_the_needed_swagger_files_are_served(docs_client: httpx.AsyncClient) -> None:
    # The dist's demo page loads the Petstore spec from the internet.
    for name in ("index.html", "swagger-initializer.js", "../__init__.py", "%2e%2e/__init__.py"):
        assert (await docs_client.get(f"/docs/assets/{name}")).status_code == 404, name
    init = await docs_client.get("/docs/static/swagger-init.js")
    assert init.status_code == 200
    assert "SwaggerUIBundle" in init.text


async def test_the_landing_page_shows_this_deployments_base_urls(
    docs_client: httpx.AsyncClient,
) -> None:
    answer = await docs_client.get("/")
    assert answer.status_code == 200
    html = unescape(answer.text)
    sandbox = f"http://{HOST}/sandbox"
    assert f'curl -X POST "{sandbox}/api/v4/auth/token"' in html
    assert f'BASE_URL = "{sandbox}"  # production: http://{HOST}\n' in html
    assert f"{sandbox}/api/v4/whatsapp/chats/393331234567/message" in html
    assert f"{sandbox}/api/v4/webhooks/create" in html
    assert "fetch(`${BASE_URL}/api/v4/auth/token`" in html
    assert f"<code>http://{HOST}</code>" in html  # the production base URL card
    hrefs = {attrs.get("href") for _, attrs in parse(html).tags}
    assert {"/docs", "/openapi.json", "/sandbox/docs"} <= hrefs
    assert "{{" not in html
    assert "Tidings &lt;API&gt;" in answer.text


async def test_the_landing_page_under_the_sandbox_prefix(
    sandbox_client: httpx.AsyncClient,
) -> None:
    html = unescape((await sandbox_client.get("/sandbox/")).text)
    assert f'"https://{HOST}/sandbox/api/v4/auth/token"' in html
    assert "/sandbox/sandbox" not in html
    assert f"<code>https://{HOST}</code>" in html
    hrefs = {attrs.get("href") for _, attrs in parse(html).tags}
    assert {"/sandbox/docs", "/sandbox/openapi.json"} <= hrefs


async def test_the_landing_page_on_a_sandbox_host(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=SandboxHost(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        html = unescape((await client.get("/")).text)
        servers = (await client.get("/openapi.json")).json()["servers"]
    assert '"http://sandbox.test/api/v4/auth/token"' in html
    assert "http://sandbox.test/sandbox" not in html
    assert "production host" in html
    assert [server["url"] for server in servers] == ["/"]


async def test_the_landing_page_csp_allows_exactly_its_own_style_and_scripts(
    docs_client: httpx.AsyncClient,
) -> None:
    answer = await docs_client.get("/")
    tags = parse(answer.text)
    assert tags.inline_scripts == []
    scripts = [attrs["src"] for tag, attrs in tags.tags if tag == "script"]
    assert scripts == ["/docs/static/copy.js"]
    assert (await docs_client.get("/docs/static/copy.js")).status_code == 200
    [style] = tags.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    csp = answer.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in csp
    assert "script-src 'self';" in csp
    assert "unsafe" not in csp
    assert "http://" not in "".join(resource_urls(tags))


@pytest.mark.parametrize(
    "host",
    [
        '"><script>alert(1)</script>',
        'evil.test" onmouseover="alert(1)',
        "evil.test/<img src=x onerror=alert(1)>",
        "evil.test'; rm -rf ~; echo '",
    ],
)
async def test_a_hostile_host_header_is_not_reflected(
    docs_client: httpx.AsyncClient, host: str
) -> None:
    for path in ("/", "/docs"):
        answer = await docs_client.get(path, headers={"Host": host})
        assert answer.status_code == 200
        assert host not in answer.text
        assert "alert(1)" not in answer.text
        assert "rm -rf" not in answer.text
        tags = parse(answer.text)
        assert not any(attrs.get("onmouseover") or attrs.get("onerror") for _, attrs in tags.tags)
        assert len([t for t, _ in tags.tags if t == "script"]) == (1 if path == "/" else 3)


def test_every_interpolated_value_is_escaped() -> None:
    # Host validation replaces bad Hosts; escaping must protect on its own as well.
    roots = SiteRoots('http://"><b>x', '/p"<i>', '/p"<i>', '/p"<i>/sandbox', False)
    for html in (
        render_landing(title="<u>T</u>", version="<s>", roots=roots),
        render_swagger_page("<u>T</u>", roots),
    ):
        assert not re.search(r"<(b|i|u|s)>", html)
        assert '/p"' not in html


async def test_a_host_with_a_port_or_an_ipv6_address_is_kept(
    docs_client: httpx.AsyncClient,
) -> None:
    for host in ("localhost:8000", "[::1]:8000", "10.0.0.7"):
        html = unescape((await docs_client.get("/", headers={"Host": host})).text)
        assert re.search(rf'"http://{re.escape(host)}/sandbox/api/v4/auth/token"', html), host


def _steps_languages(html: str) -> list[Any]:
    return re.findall(r'<label for="step(\d)-(\w+)">', html)


async def test_each_step_has_curl_python_and_node(docs_client: httpx.AsyncClient) -> None:
    html = (await docs_client.get("/")).text
    assert _steps_languages(html) == [
        (step, language) for step in "123" for language in ("curl", "python", "node")
    ]
    assert html.count("data-copy") == 9 + 2  # the samples and the two base URLs
