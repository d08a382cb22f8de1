"""Use cases for accounts and users (command line and API)."""

from __future__ import annotations

import phonenumbers

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
    if await repo.account_by_name(name) is not None:
        raise Conflict(
            f"An account named {name!r} exists already; account names are unique "
            "(the command line finds accounts by name).",
            code="account_name_taken",
        )
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


async def find_user(repo: AccountRepository, user: str) -> User:
    found = await repo.find_user(user.strip())
    if found is None:
        raise NotFound(f"No user has the id or username {user!r}.")
    return found


async def set_disabled(repo: AccountRepository, user: str, disabled: bool) -> User:
    """Disable (its tokens stop working, it cannot log in) or enable a user."""
    found = await find_user(repo, user)
    found.disabled = disabled
    await repo.session.flush()
    return found


async def delete_user(repo: AccountRepository, user: str) -> User:
    found = await find_user(repo, user)
    await repo.delete_user(found.id)
    return found


async def reset_password(repo: AccountRepository, user: str, password: str) -> User:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    password_hash = await hash_password_async(password)
    found = await find_user(repo, user)
    found.password_hash = password_hash
    await repo.session.flush()
    return found


async def set_phone_country(repo: AccountRepository, account: str, country: str | None) -> Account:
    """Set (or, with None, clear) the country an account's national numbers are read in."""
    if country is not None:
        country = country.strip().upper()
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise Unprocessable(
                f"{country!r} is not a country code phone numbers know; use an ISO 3166 "
                "code such as US, GB or IT."
            )
    found = await repo.find_account(account)
    if found is None:
        raise NotFound(f"No account has the id or unique name {account!r}.")
    found.phone_default_country = country
    await repo.session.flush()
    return found
