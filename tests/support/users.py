"""Creating an account and a user for a test, and logging in."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from tidings.accounts import service
from tidings.accounts.repository import AccountRepository
from tidings.core.clock import SystemClock

PASSWORD = "correct horse battery staple"


@dataclass
class TestUser:
    __test__ = False
    account_id: str
    user_id: str
    username: str
    password: str


async def create_test_user(app: FastAPI, username: str = "ada@example.com") -> TestUser:
    ctx = app.state.ctx
    async with ctx.sessions() as session:
        repo = AccountRepository(session)
        account = await service.create_account(repo, SystemClock(), f"Account of {username}")
        await session.commit()
        user = await service.create_user(
            repo, SystemClock(), account=account.id, username=username, password=PASSWORD
        )
        await session.commit()
    return TestUser(account.id, user.id, username, PASSWORD)


async def login(
    client: httpx.AsyncClient, user: TestUser, *, base: str = "/sandbox", **extra: object
) -> str:
    answer = await client.post(
        f"{base}/api/v4/auth/token",
        json={"username": user.username, "password": user.password, **extra},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
