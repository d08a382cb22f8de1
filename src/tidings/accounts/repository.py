"""SQL for accounts and users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.accounts.models import Account, User


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def session(self) -> AsyncSession:
        return self._session

    async def add_account(self, account: Account) -> None:
        self._session.add(account)
        await self._session.flush()

    async def get_account(self, account_id: str) -> Account | None:
        return await self._session.get(Account, account_id)

    async def find_account(self, id_or_name: str) -> Account | None:
        found = await self._session.get(Account, id_or_name)
        if found is not None:
            return found
        rows = await self._session.scalars(select(Account).where(Account.name == id_or_name))
        matches = rows.all()
        return matches[0] if len(matches) == 1 else None

    async def list_accounts(self) -> Sequence[Account]:
        return (await self._session.scalars(select(Account).order_by(Account.id))).all()

    async def count_accounts(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(Account)) or 0)

    async def add_user(self, user: User) -> None:
        self._session.add(user)
        await self._session.flush()

    async def get_user(self, user_id: str) -> User | None:
        return await self._session.get(User, user_id)

    async def user_by_username(self, username: str) -> User | None:
        return await self._session.scalar(select(User).where(User.username == username))

    async def count_users(self, account_id: str) -> int:
        query = select(func.count()).select_from(User).where(User.account_id == account_id)
        return int(await self._session.scalar(query) or 0)

    async def account_by_name(self, name: str) -> Account | None:
        return await self._session.scalar(select(Account).where(Account.name == name))

    async def find_user(self, id_or_username: str) -> User | None:
        return await self._session.scalar(
            select(User).where(or_(User.id == id_or_username, User.username == id_or_username))
        )

    async def list_users(self, account_id: str | None = None) -> Sequence[User]:
        query = select(User).order_by(User.account_id, User.username)
        if account_id is not None:
            query = query.where(User.account_id == account_id)
        return (await self._session.scalars(query)).all()

    async def delete_user(self, user_id: str) -> None:
        await self._session.execute(delete(User).where(User.id == user_id))
