"""The tracking routes that recipients' mail clients call (no authentication).

    GET  /t/o/{token}.gif   the open pixel: a 1x1 GIF, records ``opened``
    GET  /t/c/{token}       a tracked link: 302 to the link's target, records ``clicked``
    GET  /t/u/{token}       the unsubscribe confirmation page (never unsubscribes)
    POST /t/u/{token}       RFC 8058 one-click unsubscribe: records ``unsubscribed``

They sit outside ``/api`` and work under ``/sandbox`` too (the environment
middleware moves the prefix into ``root_path``). The signed token says which
message, so the message is found by id whatever the environment of the request.
A malformed, tampered or unknown token answers 404 problem+json, and a click
token only ever leads to the target stored for its link index: never an open
redirect. Events go through the inbound processor, hence the group committer.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.api.deps import ContextDep
from tidings.context import AppContext
from tidings.core.errors import NotFound
from tidings.messages.models import Message
from tidings.messages.repository import MessageRepository
from tidings.tracking.tokens import Action, TrackingToken, signer_for

router = APIRouter(prefix="/t", include_in_schema=False)

# The smallest transparent GIF (1x1, 43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Token = Annotated[str, Path(max_length=200)]


async def _message_of(ctx: AppContext, token: str, action: Action) -> tuple[TrackingToken, Message]:
    verified = signer_for(ctx.tokens).verify(token, action)
    message = None
    if verified is not None:
        async with ctx.sessions() as session:
            message = await MessageRepository(session).get_by_id(verified.message_id)
    if verified is None or message is None or message.channel != "email":
        raise NotFound("This tracking link is not valid.")
    return verified, message


@router.get("/o/{token}.gif")
async def open_pixel(token: Token, ctx: ContextDep) -> Response:
    _, message = await _message_of(ctx, token, "o")
    await ctx.runtime.inbound.engagement(message.id, "opened", ctx.clock.now())
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/c/{token}")
async def click(token: Token, ctx: ContextDep) -> Response:
    verified, message = await _message_of(ctx, token, "c")
    tracking: dict[str, Any] = (message.content or {}).get("tracking") or {}
    links = tracking.get("links") or []
    index = verified.link
    if index is None or index >= len(links) or not isinstance(links[index], str):
        raise NotFound("This tracking link is not valid.")
    url: str = links[index]
    await ctx.runtime.inbound.engagement(
        message.id, "clicked", ctx.clock.now(), {"link": index, "url": url}
    )
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}button{font-size:1rem;padding:.5rem 1rem}</style>"
        f"</head><body>{body}</body></html>"
    )


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: Token, ctx: ContextDep) -> HTMLResponse:
    """A confirmation page: link prefetchers and scanners follow GETs, so a GET
    never unsubscribes; the button POSTs to this same URL."""
    _, message = await _message_of(ctx, token, "u")
    sender = (message.content or {}).get("from") or message.from_address or ""
    body = (
        "<h1>Unsubscribe</h1>"
        f"<p>Stop emails from <strong>{html.escape(str(sender))}</strong> to "
        f"<strong>{html.escape(message.to_address)}</strong>?</p>"
        f'<form method="post" action="{html.escape(token, quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(_page("Unsubscribe", body), headers=PAGE_HEADERS)


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: Token, ctx: ContextDep) -> HTMLResponse:
    """RFC 8058 one-click: mailbox providers POST ``List-Unsubscribe=One-Click``
    (form-urlencoded or multipart) without cookies or credentials; the signed URL
    is the authority, so any POST to it unsubscribes. Repeats are harmless."""
    _, message = await _message_of(ctx, token, "u")
    await ctx.runtime.inbound.engagement(message.id, "unsubscribed", ctx.clock.now())
    body = (
        "<h1>Unsubscribed</h1>"
        f"<p><strong>{html.escape(message.to_address)}</strong> will get no more of "
        "these emails.</p>"
    )
    return HTMLResponse(_page("Unsubscribed", body), headers=PAGE_HEADERS)
