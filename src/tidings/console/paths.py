"""Where the console lives, and the links every page needs.

Routes are declared under :data:`CONSOLE` (``/console``); the same routes answer under
``/sandbox/console`` because the environment middleware moves ``/sandbox`` into the
request's ``root_path``. Links are therefore always built from the request
(:func:`page_links`), never written as absolute paths in a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

from tidings.core.environments import Environment
from tidings.docs_site.urls import site_roots
from tidings.http.environment import environment_of, get_route_path

CONSOLE = "/console"
STATIC_PATH = f"{CONSOLE}/static"
SIGN_IN = f"{CONSOLE}/sign-in"
SIGN_OUT = f"{CONSOLE}/sign-out"


@dataclass(frozen=True, slots=True)
class PageLinks:
    """The root-relative links of one page, for its environment."""

    environment: Environment
    # The console's root in this environment: "/console" or "/sandbox/console".
    home: str
    static: str
    sign_in: str
    sign_out: str
    # The same page in each environment; None where this request cannot know it (a
    # configured sandbox host: production lives on another host).
    production: str | None
    sandbox: str

    def to(self, path: str = "", **query: str | int | None) -> str:
        """A console page's link: ``path`` below the console's root, with ``query``
        (empty values left out)."""
        link = self.home + path
        values = {key: str(value) for key, value in query.items() if value not in (None, "")}
        return f"{link}?{urlencode(values)}" if values else link

    @property
    def on_sandbox(self) -> bool:
        return self.environment == Environment.SANDBOX


def page_links(request: Request, *, switch_path: str | None = None) -> PageLinks:
    """The links of ``request``'s page; ``switch_path`` (below ``/console``) is where
    the environment switch leads, by default the same page (a page about one record,
    which exists in one environment only, points at its list instead)."""
    roots = site_roots(request.scope)
    here = roots.current_root + CONSOLE
    route_path = get_route_path(request.scope)
    same_page = route_path[len(CONSOLE) :] if route_path.startswith(CONSOLE) else ""
    target = CONSOLE + (same_page if switch_path is None else switch_path)
    production = None if roots.production_root is None else roots.production_root + target
    return PageLinks(
        environment=environment_of(request.scope),
        home=here,
        static=roots.current_root + STATIC_PATH,
        sign_in=roots.current_root + SIGN_IN,
        sign_out=roots.current_root + SIGN_OUT,
        production=production,
        sandbox=roots.sandbox_root + target,
    )


def local_target(request: Request, target: str | None) -> str:
    """Where to go after signing in: ``target`` when it is a page of this console
    (never another site: ``//host`` and ``/\\host`` are refused), else the console's
    home."""
    home = site_roots(request.scope).current_root + CONSOLE
    if (
        target
        and target.startswith(home)
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
        and all(ord(ch) > 31 for ch in target)
    ):
        return target
    return home
