"""HTTP endpoint: ``GET /api/v4/account``."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.accounts.repository import AccountRepository
from tidings.accounts.schemas import AccountOut, UserOut
from tidings.api.deps import PrincipalDep, SessionDep
from tidings.core.errors import Unauthorized
from tidings.credits.repository import CreditRepository
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses

router = APIRouter(prefix="/api/v4", tags=["Account"])


@router.get(
    "/account",
    response_model=AccountOut,
    summary="The caller's account",
    responses=problem_responses(*AUTHENTICATED),
)
async def get_account(principal: PrincipalDep, session: SessionDep) -> AccountOut:
    """The account of the token's user, the environment the token belongs to, and
    the credit balance."""
    repo = AccountRepository(session)
    account = await repo.get_account(principal.account_id)
    user = await repo.get_user(principal.user_id)
    if account is None or user is None:
        raise Unauthorized("The account of this token no longer exists.")
    return AccountOut(
        id=account.id,
        name=account.name,
        environment=principal.environment,
        user=UserOut(id=user.id, username=user.username),
        credits=float(await CreditRepository(session).balance(account.id)),
        created_at=account.created_at,
    )
