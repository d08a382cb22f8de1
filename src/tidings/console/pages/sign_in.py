"""``/console/sign-in`` (the form, and signing in) and ``/console/sign-out``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.console.csrf import EXPIRED, CheckedFormDep, read_form
from tidings.console.errors import CsrfRefused, SignInRefused
from tidings.console.paths import SIGN_IN, SIGN_OUT, local_target, page_links
from tidings.console.rendering import render
from tidings.console.session import (
    ConsoleUserDep,
    optional_user,
    pre_session_nonce,
    pre_session_token,
    pre_session_token_matches,
    set_pre_session_cookie,
    sign_in,
    sign_out,
)

router = APIRouter(include_in_schema=False)

MAX_FIELD = 512


def sign_in_page(
    request: Request, *, error: SignInRefused | None = None, username: str = ""
) -> HTMLResponse:
    """The form, with what went wrong last time (401 or 429) if anything did."""
    headers = {}
    nonce = pre_session_nonce(request)
    if error is not None and error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    answer = render(
        request,
        "sign_in.html",
        user=None,
        status=error.status if error else 200,
        headers=headers,
        error=error.detail if error else None,
        username=username,
        next=request.query_params.get("next", "")[:MAX_FIELD],
        form_token=pre_session_token(request, nonce),
    )
    # The form's token is bound to this cookie, set with the form.
    set_pre_session_cookie(request, answer, nonce)
    return answer


@router.get(SIGN_IN)
async def sign_in_form(request: Request) -> Response:
    if await optional_user(request) is not None:
        target = local_target(request, request.query_params.get("next"))
        return RedirectResponse(target, status_code=303)
    return sign_in_page(request)


@router.post(SIGN_IN)
async def sign_in_submit(request: Request) -> Response:
    form = await read_form(request)
    if not pre_session_token_matches(request, form):
        raise CsrfRefused(EXPIRED)
    username = form.get("username", "")[:MAX_FIELD]
    password = form.get("password", "")[:MAX_FIELD]
    target = local_target(request, form.get("next"))
    answer = RedirectResponse(target, status_code=303)
    try:
        await sign_in(request, answer, username, password)
    except SignInRefused as error:
        return sign_in_page(request, error=error, username=username)
    return answer


@router.post(SIGN_OUT)
async def sign_out_submit(request: Request, user: ConsoleUserDep, form: CheckedFormDep) -> Response:
    answer = RedirectResponse(page_links(request).sign_in, status_code=303)
    await sign_out(request, user, answer)
    return answer
