"""``/console/messages``: the account's messages in this environment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tidings.console.paths import CONSOLE
from tidings.console.rendering import render
from tidings.console.session import ConsoleUserDep

router = APIRouter(prefix=f"{CONSOLE}/messages", include_in_schema=False)


@router.get("")
async def messages_page(request: Request, user: ConsoleUserDep) -> HTMLResponse:
    return render(request, "messages.html", user=user)
