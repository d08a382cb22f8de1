"""Makes the right default country current for each request, so that
:func:`tidings.channels.phone.to_e164` reads national numbers in it wherever a
request's numbers are read (sends, bulk, contacts, chats): the caller's account's
country if it has one (``tidings accounts set-country``), else the deployment's
(``TIDINGS_PHONE_DEFAULT_COUNTRY``), else none.

Runs inside the rate limiter, which has verified the caller by then.
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.channels.phone import reading_country
from tidings.http.callers import verified_caller


class CountryOf(Protocol):
    async def country(self, account_id: str) -> str | None: ...


class PhoneReadingMiddleware:
    def __init__(self, app: ASGIApp, *, country: str | None, accounts: CountryOf) -> None:
        self.app = app
        self.country = country
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with reading_country(await self.country_for(scope)):
            await self.app(scope, receive, send)

    async def country_for(self, scope: Scope) -> str | None:
        """The country national numbers are read in for this request."""
        caller = verified_caller(scope)
        account_id = getattr(caller, "account_id", None)
        if isinstance(account_id, str):
            return await self.accounts.country(account_id) or self.country
        return self.country
