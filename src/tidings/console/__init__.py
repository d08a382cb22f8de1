"""The web console: server-rendered pages for the users that already exist.

``/console/...`` shows production and ``/sandbox/console/...`` the sandbox, as the
API's base URLs go (:mod:`tidings.http.environment` moves the prefix into
``root_path``, so one set of routes serves both). Every page reads through the same
repositories and services as the API, scoped by the signed-in user's account and the
request's environment.

Modules, one job each:

- ``install.py``: mounts the pages, the static files, the error handlers and the
  headers middleware on the application (the one call ``create_app`` makes);
- ``paths.py``: the console's URLs, and the links of a page (home, static, the
  production/sandbox switch);
- ``headers.py``: the Content-Security-Policy and the other headers of every answer
  under ``/console``;
- ``session.py``: the session cookie: signing in (the API's password check and login
  throttle), the signed-in user of a request, signing out;
- ``csrf.py``: the token every form carries, bound to the session, and reading a form;
- ``errors.py``: what a page raises (sign in first, 403 CSRF, 404) and its answer;
- ``rendering.py``: the Jinja2 templates (autoescaped) and the context every page gets;
- ``nav.py``: the navigation's entries;
- ``pages/``: one module per page or group of pages, each with its own router.

See docs/operations.md ("Console") for the cookie and policy choices.
"""

from tidings.console.install import install_console

__all__ = ["install_console"]
