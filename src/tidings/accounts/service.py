"""Use cases for accounts and users (command line and API)."""

from __future__ import annotations

from tidings.accounts.models import Account, User
from tidings.accounts.repository import AccountRepository
from tidings.auth.passwords import hash_password_async
from tidings.core.clock import Clock
from tidings.core.errors import Conflict, NotFound, Unprocessable
from tidings.core.ids import new_id
from tidings.sandbox.seed import seed_sandbox

MIN_PASSWORD_LENGTH = 8


async def create_account(repo: AccountRepository, clock: Clock, name: str) -> Account:
    name = name.strip()
    if not name:
        raise Unprocessable("An account needs a name.")
    account = Account(id=new_id("acc"), name=name, created_at=clock.now())
    await repo.add_account(account)
    await seed_sandbox(repo.session, account.id, account.created_at)
    return account


async def create_user(
    repo: AccountRepository, clock: Clock, *, account: str, username: str, password: str
) -> User:
    # Hash first: with the embedded SQLite driver a write transaction must not wait on
    # anything but the database (see tidings.db.inline_sqlite).
    password_hash = (
        await hash_password_async(password) if len(password) >= MIN_PASSWORD_LENGTH else ""
    )
    found = await repo.find_account(account)
    if found is None:
        raise NotFound(f"No account has the id or unique name {account!r}.")
    username = username.strip()
    if not username:
        raise Unprocessable("A user needs a username.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if await repo.user_by_username(username) is not None:
        raise Conflict(f"The username {username!r} is taken.", code="username_taken")
    user = User(
        id=new_id("usr"),
        account_id=found.id,
        username=username,
        password_hash=password_hash,
        disabled=False,
        created_at=clock.now(),
    )
    await repo.add_user(user)
    return user
