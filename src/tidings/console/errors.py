"""What a console page raises instead of answering, and the answer each gets.

    ConsoleError                 (status, title, detail): an HTML page
    ├── SignInRequired      303  to the sign-in page, back here afterwards
    ├── CsrfRefused         403  a form without its session's token
    ├── PageNotFound        404  no such record in this account and environment
    └── SignInRefused       401 / 429  the sign-in form again, saying why

The API's :class:`~tidings.core.errors.ApiError` stays the API's: pages catch the
ones they expect and raise these, so a console user never gets problem+json.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

# Sent by console.js with the requests that refresh part of a page.
REFRESH_HEADER = "x-console-refresh"


class ConsoleError(Exception):
    status = 500
    title = "Something went wrong"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SignInRequired(ConsoleError):
    status = 303
    title = "Sign in"

    def __init__(self, detail: str = "Sign in to open the console.", *, clear: bool = False):
        super().__init__(detail)
        # The cookie was there but is no good (expired, revoked, forged): drop it.
        self.clear = clear


class CsrfRefused(ConsoleError):
    status = 403
    title = "This form has expired"


class PageNotFound(ConsoleError):
    status = 404
    title = "Not found"


class SignInRefused(ConsoleError):
    title = "Sign in"

    def __init__(self, detail: str, *, status: int, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


async def _answer(request: Request, error: Exception) -> Response:
    # Imported here: rendering needs the session module, which raises these errors.
    from tidings.console.pages.sign_in import sign_in_page
    from tidings.console.paths import local_target, page_links
    from tidings.console.rendering import render
    from tidings.console.session import clear_session_cookie

    assert isinstance(error, ConsoleError)
    if isinstance(error, SignInRequired):
        if request.headers.get(REFRESH_HEADER):
            # The page's script refreshing a part of it: it reloads the whole page,
            # which then leads to sign-in and back to that page (not to the part).
            answer = Response(status_code=401)
            if error.clear:
                clear_session_cookie(request, answer)
            return answer
        links = page_links(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = local_target(request, target)
        location = links.sign_in if back == links.home else links.to("/sign-in", next=back)
        answer = RedirectResponse(location, status_code=303)
        if error.clear:
            clear_session_cookie(request, answer)
        return answer
    if isinstance(error, SignInRefused):
        return sign_in_page(request, error=error)
    return render(
        request,
        "error.html",
        user=None,
        status=error.status,
        title=error.title,
        detail=error.detail,
    )


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(ConsoleError, _answer)
