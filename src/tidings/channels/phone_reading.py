"""Makes the deployment's default country current for each request, so that
:func:`tidings.channels.phone.to_e164` reads national numbers in it wherever a
request's numbers are read (sends, bulk, contacts, chats)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.channels.phone import reading_country


class PhoneReadingMiddleware:
    def __init__(self, app: ASGIApp, *, country: str) -> None:
        self.app = app
        self.country = country

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with reading_country(self.country):
            await self.app(scope, receive, send)
