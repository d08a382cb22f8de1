"""Base URLs of this deployment as seen by the caller of a docs page.

The landing page, Swagger UI and the ``servers`` of ``/openapi.json`` all need the same
answer to "where do production and sandbox live, from where the caller is standing?".
It is derived from the ASGI scope only: the scheme (already corrected by the trusted
proxy handling), the Host header, the ``root_path`` (which ends with ``/sandbox`` when
the sandbox prefix was taken) and the environment that ``EnvironmentMiddleware``
recorded (a configured sandbox host is sandbox without any prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from starlette.types import Scope

from tidings.core.environments import SANDBOX_PREFIX, Environment

# A Host header is attacker-controlled and ends up inside HTML and inside copy-paste
# shell/Python/JS snippets; anything that is not a plain host[:port] is replaced.
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)
_FALLBACK_HOST = "localhost"


@dataclass(frozen=True, slots=True)
class SiteRoots:
    """Root-relative prefixes and absolute base URLs of both environments.

    ``production_root`` is ``None`` on a configured sandbox host: production lives on
    another host this request knows nothing about.
    """

    origin: str
    current_root: str
    production_root: str | None
    sandbox_root: str
    on_sandbox: bool

    @property
    def production_url(self) -> str | None:
        if self.production_root is None:
            return None
        return self.origin + self.production_root

    @property
    def sandbox_url(self) -> str:
        return self.origin + self.sandbox_root


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"host":
            header = bytes(value).decode("latin-1").strip()
            if _HOST_RE.match(header):
                return header
            break
    # No usable Host header (HTTP/1.0, or a hostile one): the address we listen on.
    server = scope.get("server")
    if server and server[0]:
        host, port = str(server[0]), server[1]
        if ":" in host:
            host = f"[{host}]"
        candidate = host if port in (None, 80, 443) else f"{host}:{port}"
        if _HOST_RE.match(candidate):
            return candidate
    return _FALLBACK_HOST


def site_roots(scope: Scope) -> SiteRoots:
    """Where production and sandbox live for the client that sent ``scope``."""
    scheme = scope.get("scheme", "http")
    if scheme not in ("http", "https"):
        scheme = "http"
    # root_path is set by the server, not the client, but it is quoted anyway because it
    # is copied into HTML attributes and code snippets.
    root = quote(str(scope.get("root_path", "")).rstrip("/"), safe="/-._~")
    state = scope.get("state") or {}
    prefixed = root.endswith(SANDBOX_PREFIX)
    sandbox_host = not prefixed and state.get("environment") == Environment.SANDBOX
    if prefixed:
        production_root: str | None = root[: -len(SANDBOX_PREFIX)]
        sandbox_root = root
    elif sandbox_host:
        production_root = None
        sandbox_root = root
    else:
        production_root = root
        sandbox_root = root + SANDBOX_PREFIX
    return SiteRoots(
        origin=f"{scheme}://{_host(scope)}",
        current_root=root,
        production_root=production_root,
        sandbox_root=sandbox_root,
        on_sandbox=prefixed or sandbox_host,
    )
