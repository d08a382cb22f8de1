"""``/console``: the overview of the account in this environment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tidings.console.paths import CONSOLE
from tidings.console.rendering import render
from tidings.console.session import ConsoleUserDep

router = APIRouter(include_in_schema=False)


@router.get(CONSOLE)
async def overview_page(request: Request, user: ConsoleUserDep) -> HTMLResponse:
    return render(request, "overview.html", user=user)
