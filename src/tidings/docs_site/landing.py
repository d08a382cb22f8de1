"""The landing page at ``/``: what Tidings is and the three-step quick start.

The page skeleton and its CSS live in ``templates/`` (``{{name}}`` placeholders, no
templating engine); the code samples are written here. Every value that comes from the
request (scheme, Host, root path) passes through :mod:`tidings.docs_site.urls` (which
replaces a malformed Host) and then ``html.escape``, so a hostile Host header cannot
inject markup or break a copied snippet.

Content-Security-Policy: the inline ``<style>`` is allowed by its SHA-256 hash (it never
varies), and the copy-button script is a file under ``/docs/static`` (``script-src
'self'``), so no inline script is ever allowed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from html import escape
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tidings.docs_site.deployment import ProductionProviders
from tidings.docs_site.swagger import ASSETS_PATH, STATIC_PATH
from tidings.docs_site.urls import SiteRoots, site_roots

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_CHAT = "393331234567"  # the spec's example contact; `+` may be left out of the path
_LANGUAGES = (("curl", "cURL"), ("python", "Python"), ("node", "Node.js"))

# Each step: title, explanation, the HTTP exchange, then a sample per language.
# @SANDBOX@ and @PRODUCTION@ are replaced by this deployment's base URLs.
_Step = tuple[str, str, str, Mapping[str, str]]
_STEPS: tuple[_Step, ...] = (
    (
        "Get your token",
        "Call the authentication endpoint with your credentials to get a JWT, then send it "
        "in the Authorization header of every other request.",
        'POST /api/v4/auth/token\n{"username": "...", "password": "..."}\n'
        '→ 200 {"token": "eyJh...", "expiresIn": 3600, "type": "Bearer"}',
        {
            "curl": 'curl -X POST "@SANDBOX@/api/v4/auth/token" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d \'{"username": "you@example.com", "password": "your-password"}\'',
            "python": "import requests\n\n"
            'BASE_URL = "@SANDBOX@"  # production: @PRODUCTION@\n\n'
            "r = requests.post(\n"
            '    f"{BASE_URL}/api/v4/auth/token",\n'
            '    json={"username": "you@example.com", "password": "your-password"},\n'
            ")\n"
            "r.raise_for_status()\n"
            'token = r.json()["token"]  # valid for r.json()["expiresIn"] seconds',
            "node": 'const BASE_URL = "@SANDBOX@"; // production: @PRODUCTION@\n\n'
            "const r = await fetch(`${BASE_URL}/api/v4/auth/token`, {\n"
            '  method: "POST",\n'
            '  headers: { "Content-Type": "application/json" },\n'
            '  body: JSON.stringify({ username: "you@example.com", password: "your-password" }),\n'
            "});\n"
            "if (!r.ok) throw new Error(`login failed: ${await r.text()}`);\n"
            "const { token } = await r.json();",
        },
    ),
    (
        "Send your first WhatsApp message",
        "Put the token in the Authorization header and send a message to a contact's "
        "number. In the sandbox it goes through a simulated provider: sent, delivered, read.",
        f"POST /api/v4/whatsapp/chats/{_CHAT}/message\nAuthorization: Bearer <token>\n"
        '{"body": "Hello!"}\n→ {"id": "msg_...", "status": "sent", ...}',
        {
            "curl": 'TOKEN="eyJh..."  # the token from step 1\n\n'
            f'curl -X POST "@SANDBOX@/api/v4/whatsapp/chats/{_CHAT}/message" \\\n'
            '  -H "Authorization: Bearer $TOKEN" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d \'{"body": "Hello!"}\'',
            "python": 'headers = {"Authorization": f"Bearer {token}"}\n\n'
            "r = requests.post(\n"
            f'    f"{{BASE_URL}}/api/v4/whatsapp/chats/{_CHAT}/message",\n'
            "    headers=headers,\n"
            '    json={"body": "Hello!"},\n'
            ")\n"
            "r.raise_for_status()  # a 4xx answer names the problem in r.json()['detail']\n"
            'print(r.json()["id"], r.json()["status"])  # msg_... sent',
            "node": "const headers = {\n"
            "  Authorization: `Bearer ${token}`,\n"
            '  "Content-Type": "application/json",\n'
            "};\n\n"
            f"const sent = await fetch(`${{BASE_URL}}/api/v4/whatsapp/chats/{_CHAT}/message`, {{\n"
            '  method: "POST",\n'
            "  headers,\n"
            '  body: JSON.stringify({ body: "Hello!" }),\n'
            "});\n"
            "const message = await sent.json();\n"
            "if (!sent.ok) throw new Error(message.detail);\n"
            "console.log(message.id, message.status); // msg_... sent",
        },
    ),
    (
        "Receive events with a webhook",
        "Register an endpoint of yours (any HTTPS URL your server answers at; the sandbox of "
        "a local deployment may also reach http://127.0.0.1) to receive inbound messages, "
        "delivery receipts and status changes, signed with the Standard Webhooks scheme.",
        'POST /api/v4/webhooks/create\n{"url": "https://your-app.example/hook"}\n'
        '→ 201 {"id": "whk_...", "status": "active", "secret": "whsec_...", ...}',
        {
            "curl": 'HOOK_URL="https://your-app.example/hook"  # your receiver\n\n'
            'curl -X POST "@SANDBOX@/api/v4/webhooks/create" \\\n'
            '  -H "Authorization: Bearer $TOKEN" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d "{\\"url\\": \\"$HOOK_URL\\"}"',
            "python": 'HOOK_URL = "https://your-app.example/hook"  # your receiver\n\n'
            "r = requests.post(\n"
            '    f"{BASE_URL}/api/v4/webhooks/create",\n'
            "    headers=headers,\n"
            '    json={"url": HOOK_URL},\n'
            ")\n"
            "r.raise_for_status()  # 422 names a URL that may not be used\n"
            "hook = r.json()\n"
            'if hook.get("warning"):  # e.g. the host does not resolve yet\n'
            '    print(hook["warning"])\n'
            'print(hook["id"], hook["secret"])  # keep the secret: it signs every delivery',
            "node": 'const HOOK_URL = "https://your-app.example/hook"; // your receiver\n\n'
            "const created = await fetch(`${BASE_URL}/api/v4/webhooks/create`, {\n"
            '  method: "POST",\n'
            "  headers,\n"
            "  body: JSON.stringify({ url: HOOK_URL }),\n"
            "});\n"
            "const hook = await created.json();\n"
            "if (!created.ok) throw new Error(hook.detail);\n"
            "if (hook.warning) console.warn(hook.warning);\n"
            "const { id, secret } = hook; // keep the secret: it signs deliveries",
        },
    ),
)

Endpoint = Callable[[Request], Awaitable[Response]]


@cache
def _resource(name: str) -> str:
    # Read on first use, not at import: nothing runs at import time.
    return (files("tidings.docs_site") / "templates" / name).read_text(encoding="utf-8")


@cache
def landing_csp() -> str:
    """The page's CSP; the inline stylesheet is allowed by its hash, which never varies."""
    digest = hashlib.sha256(_resource("landing.css").encode("utf-8")).digest()
    style_hash = base64.b64encode(digest).decode("ascii")
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'sha256-{style_hash}'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _fill(template: str, values: Mapping[str, str]) -> str:
    # A missing value raises KeyError: better a failing test than a literal {{name}}.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _code_block(code: str, extra_class: str = "") -> str:
    css_class = f"code {extra_class}".strip()
    return f'<div class="{css_class}" data-copy><pre><code>{escape(code)}</code></pre></div>'


def _render_step(number: int, step: _Step, roots: SiteRoots) -> str:
    title, text, exchange, samples = step
    production = roots.production_url or "your production base URL"
    tabs: list[str] = []
    for index, (key, label) in enumerate(_LANGUAGES):
        tab_id = f"step{number}-{key}"
        checked = " checked" if index == 0 else ""
        tabs.append(
            f'<input type="radio" name="step{number}" id="{tab_id}"{checked}>'
            f'<label for="{tab_id}">{escape(label)}</label>'
        )
    for key, _label in _LANGUAGES:
        code = samples[key].replace("@SANDBOX@", roots.sandbox_url)
        tabs.append(_code_block(code.replace("@PRODUCTION@", production)))
    return (
        f'      <li class="card step">\n        <div>\n'
        f'          <span class="num">{number}</span>\n'
        f"          <h3>{escape(title)}</h3>\n          <p>{escape(text)}</p>\n"
        f'          <pre class="http">{escape(exchange)}</pre>\n        </div>\n'
        f'        <div class="tabs">{"".join(tabs)}</div>\n      </li>'
    )


def _providers_block(providers: ProductionProviders | None) -> str:
    if providers is None:
        return "        <p>Real providers as configured per account.</p>"
    if not providers.kinds:
        return (
            "        <p>No production providers are configured on this deployment yet: "
            "production sends answer <code>503 channel_not_configured</code> until an "
            "operator adds one (<code>tidings providers add</code>).</p>"
        )
    rows = "".join(
        f"<li>{escape(label)}: {escape(kinds)}</li>" for label, kinds in providers.per_channel()
    )
    return (
        "        <p>Providers configured on this deployment (a channel with none answers "
        f"<code>503 channel_not_configured</code>):</p>\n        <ul>{rows}</ul>"
    )


def render_landing(
    *, title: str, version: str, roots: SiteRoots, providers: ProductionProviders | None = None
) -> str:
    """The landing page HTML for a reader whose base URLs are ``roots``."""
    root = roots.current_root
    if roots.production_url is None:
        production_block = (
            "        <p>This is the sandbox host; production is served from this "
            "deployment's production host, with the same paths.</p>"
        )
    else:
        production_block = "        " + _code_block(roots.production_url, "small")
    text = {
        "title": title,
        "version": version,
        "home_url": f"{root}/",
        "docs_url": f"{root}/docs",
        "openapi_url": f"{root}/openapi.json",
        "favicon_url": f"{root}{ASSETS_PATH}/favicon-32x32.png",
        "copy_js_url": f"{root}{STATIC_PATH}/copy.js",
        "sandbox_url": roots.sandbox_url,
        "sandbox_docs_url": f"{roots.sandbox_root}/docs",
    }
    markup = {
        "css": _resource("landing.css"),
        "steps": "\n".join(_render_step(n, s, roots) for n, s in enumerate(_STEPS, start=1)),
        "production_block": production_block,
        "production_providers": _providers_block(providers),
    }
    values = {key: escape(value) for key, value in text.items()} | markup
    return _fill(_resource("landing.html"), values)


def landing_endpoint(
    *,
    title: str,
    version: str,
    providers: Callable[[Request], Awaitable[ProductionProviders | None]] | None = None,
) -> Endpoint:
    """The ``GET /`` handler; ``providers`` tells what production can send."""

    async def landing_page(request: Request) -> Response:
        configured = await providers(request) if providers is not None else None
        html = render_landing(
            title=title, version=version, roots=site_roots(request.scope), providers=configured
        )
        # The page shows URLs derived from Host: a shared cache must not mix hosts.
        headers = {"Content-Security-Policy": landing_csp(), "Vary": "Host"}
        return HTMLResponse(html, headers=headers)

    return landing_page
