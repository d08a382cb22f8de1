"""Decides the environment of each request (spec section 2).

``/sandbox/...`` is always the sandbox: the prefix becomes the ``root_path``, so
the same routes serve both and links built from the request keep the prefix.
Otherwise the Host header decides, by the ``sandbox_hosts`` setting; everything
else is production.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.core.environments import SANDBOX_PREFIX, Environment


def get_route_path(scope: Scope) -> str:
    """The path below ``root_path`` (what the router matches on)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


def environment_of(scope: Scope) -> Environment:
    state = scope.get("state") or {}
    return state.get("environment", Environment.PRODUCTION)  # type: ignore[no-any-return]


class EnvironmentMiddleware:
    def __init__(self, app: ASGIApp, *, sandbox_hosts: list[str]) -> None:
        self.app = app
        self._sandbox_hosts = frozenset(host.lower() for host in sandbox_hosts)

    def _host_is_sandbox(self, scope: Scope) -> bool:
        if not self._sandbox_hosts:
            return False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                if host.startswith("["):
                    host = host.split("]", 1)[0] + "]"
                else:
                    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
                return host in self._sandbox_hosts
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.apply(scope)
        await self.app(scope, receive, send)

    def apply(self, scope: Scope) -> None:
        """Decide the request's environment: in its state, and for the sandbox's prefix
        in its ``root_path``."""
        route_path = get_route_path(scope)
        environment = Environment.PRODUCTION
        if route_path == SANDBOX_PREFIX or route_path.startswith(SANDBOX_PREFIX + "/"):
            # Per ASGI, ``path`` keeps the full path and ``root_path`` names the mount
            # point; routing then sees the path without the prefix. The scope is
            # changed in place so outer middleware (metrics) sees the matched route.
            if route_path == SANDBOX_PREFIX:
                scope["path"] = scope["path"] + "/"
                if scope.get("raw_path") is not None:
                    scope["raw_path"] = scope["raw_path"] + b"/"
            scope["root_path"] = scope.get("root_path", "") + SANDBOX_PREFIX
            environment = Environment.SANDBOX
        elif self._host_is_sandbox(scope):
            environment = Environment.SANDBOX
        scope.setdefault("state", {})["environment"] = environment
