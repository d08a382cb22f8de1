"""Who may use the chat box: the widget token, checked on every page and API request.

The page and the stream take the token from ``?token=`` (an ``<iframe>`` and an
``EventSource`` cannot send headers); the page's other API calls send
``Authorization: Bearer <widget token>``. Either way the token must be a chat-box
token of the request's environment, from a user who still exists and is enabled.
Regular access tokens are refused here, as chat-box tokens are refused by ``/api/v4``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tidings.api.deps import ContextDep, require_environment, require_live
from tidings.context import AppContext
from tidings.core.errors import Unauthorized
from tidings.core.tenancy import TenantScope
from tidings.widget.tokens import WidgetClaims, WidgetTokenCodec

_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="A chat-box token.")


def widget_codec(ctx: AppContext) -> WidgetTokenCodec:
    # Cheap to build (one HMAC for the derived key); the context stays the lead's.
    return WidgetTokenCodec(ctx.tokens, issuer=ctx.settings.jwt_issuer, clock=ctx.clock)


def widget_account_reader(ctx: AppContext) -> Callable[[str], str | None]:
    """For the rate limiter: the account of a chat-box token whose signature and
    expiry hold (revocation is checked later, by the route)."""
    codec = widget_codec(ctx)

    def account_of(token: str) -> str | None:
        try:
            return codec.decode(token).account_id
        except Unauthorized:
            return None

    return account_of


async def check_widget_token(request: Request, ctx: AppContext, token: str) -> WidgetClaims:
    """The claims of a usable chat-box token, or :class:`Unauthorized`."""
    claims = widget_codec(ctx).decode(token)
    require_environment(request, claims.environment, issued="This chat box was made for")
    await require_live(
        ctx,
        claims.user_id,
        claims.jti,
        gone="The user who made this chat box no longer exists or is disabled.",
        revoked="This chat box has been revoked.",
    )
    return claims


async def bearer_widget_claims(
    request: Request,
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> WidgetClaims:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Send 'Authorization: Bearer <chat-box token>'.")
    return await check_widget_token(request, ctx, credentials.credentials)


async def query_widget_claims(
    request: Request,
    ctx: ContextDep,
    token: Annotated[str, Query(min_length=1, max_length=4096)],
) -> WidgetClaims:
    return await check_widget_token(request, ctx, token)


def widget_tenant(claims: WidgetClaims) -> TenantScope:
    """Whose chat the token opens: the send path needs no more."""
    return TenantScope(claims.account_id, claims.environment)


BearerWidgetDep = Annotated[WidgetClaims, Depends(bearer_widget_claims)]
QueryWidgetDep = Annotated[WidgetClaims, Depends(query_widget_claims)]
