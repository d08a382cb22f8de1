"""The login throttle under attack: a concurrent burst is counted before the password
hash runs, and an attacker's failures never lock the real user out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.support.users import TestUser
from tidings.accounts.repository import AccountRepository
from tidings.auth import service
from tidings.auth.passwords import verify_password
from tidings.auth.throttle import LoginThrottle
from tidings.core.environments import Environment
from tidings.core.errors import TooManyRequests, Unauthorized
from tidings.core.shared_windows import SharedWindowCounter
from tidings.settings import LoginThrottleSettings

TOKEN = "/sandbox/api/v4/auth/token"
ATTACKER = "198.51.100.9"


class CountingVerifier:
    """The real argon2 verification, counted; it yields first so a burst interleaves."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, password_hash: str | None, password: str) -> bool:
        self.calls += 1
        await asyncio.sleep(0)
        return await verify_password(password_hash, password)


async def _login(
    app: FastAPI, verifier: CountingVerifier, username: str, password: str, address: str
) -> str:
    ctx = app.state.ctx
    async with ctx.sessions() as session:
        try:
            await service.login(
                accounts=AccountRepository(session),
                codec=ctx.tokens,
                throttle=ctx.login_throttle,
                settings=ctx.settings,
                username=username,
                password=password,
                environment=Environment.SANDBOX,
                address=address,
                expires_in=None,
                verify=verifier,
            )
        except TooManyRequests:
            return "refused"
        except Unauthorized:
            return "wrong"
    return "ok"


async def test_a_concurrent_burst_checks_at_most_the_limit(app: FastAPI, user: TestUser) -> None:
    verifier = CountingVerifier()
    limit = app.state.ctx.settings.login_throttle.max_failures_per_pair
    burst = [_login(app, verifier, user.username, f"wrong-{n}", ATTACKER) for n in range(100)]
    answers = await asyncio.gather(*burst)
    assert verifier.calls == limit
    assert answers.count("wrong") == limit
    assert answers.count("refused") == 100 - limit
    # The right password from the attacker's address, now: refused before any check.
    assert await _login(app, verifier, user.username, user.password, ATTACKER) == "refused"
    assert verifier.calls == limit


async def test_right_password_last_in_a_burst_does_not_get_in(app: FastAPI, user: TestUser) -> None:
    verifier = CountingVerifier()
    burst = [_login(app, verifier, user.username, f"wrong-{n}", ATTACKER) for n in range(29)]
    burst.append(_login(app, verifier, user.username, user.password, ATTACKER))
    answers = await asyncio.gather(*burst)
    assert answers[-1] == "refused"
    assert verifier.calls == app.state.ctx.settings.login_throttle.max_failures_per_pair


def _client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    # Remote addresses must use HTTPS (http/transport.py).
    return httpx.AsyncClient(transport=transport, base_url="https://tidings.test")


async def test_the_real_user_logs_in_from_elsewhere_during_an_attack(
    app: FastAPI, user: TestUser
) -> None:
    async with _client(app, ATTACKER) as attacker, _client(app, "192.0.2.44") as owner:
        attack = [
            attacker.post(TOKEN, json={"username": user.username, "password": f"guess-{n}"})
            for n in range(30)
        ]
        mine = owner.post(TOKEN, json={"username": user.username, "password": user.password})
        *attacked, own = await asyncio.gather(*attack, mine)
        statuses = [answer.status_code for answer in attacked]
        limit = app.state.ctx.settings.login_throttle.max_failures_per_pair
        # A 401 is a checked password; a 429 was refused before the hash ran.
        assert statuses.count(401) == limit
        assert statuses.count(429) == 30 - limit
        assert own.status_code == 200, own.text
        # After the attack: still refused from the attacker's address, still fine elsewhere.
        after = await attacker.post(
            TOKEN, json={"username": user.username, "password": user.password}
        )
        assert after.status_code == 429
        again = await owner.post(TOKEN, json={"username": user.username, "password": user.password})
        assert again.status_code == 200, again.text


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeThrottle = Callable[..., tuple[LoginThrottle, Ticker]]


@pytest.fixture(params=["memory", "shared"])
def make_throttle(request: pytest.FixtureRequest, tmp_path: Path) -> MakeThrottle:
    """A throttle counting in this process's memory, or in the file that the
    processes of ``serve --workers N`` share (tidings.core.shared_windows)."""

    def make(**values: object) -> tuple[LoginThrottle, Ticker]:
        ticker = Ticker()
        settings = LoginThrottleSettings.model_validate(values)
        if request.param == "memory":
            return LoginThrottle(settings, monotonic=ticker), ticker
        counts = SharedWindowCounter(
            tmp_path / "login-windows", settings.window_seconds, clock=ticker
        )
        return LoginThrottle(settings, counts=counts), ticker

    return make


def test_a_username_is_slowed_globally_never_locked(make_throttle: MakeThrottle) -> None:
    throttle, _ = make_throttle(
        max_failures_per_pair=2,
        max_failures_per_username=3,
        slowdown_seconds=0.5,
        max_delay_seconds=2.0,
    )
    delays = []
    for index in range(12):
        attempt = throttle.reserve("Ada@example.com", f"203.0.113.{index}")
        delays.append(attempt.failed())
    # The first three failures of the username are answered at once, later ones later.
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:6] == [0.5, 1.0, 1.5]
    assert max(delays) == 2.0
    # Another address is never refused for the username's sake.
    throttle.reserve("ada@example.com", "203.0.113.200").succeeded()
    # A success forgets the username's failures.
    assert throttle.reserve("ada@example.com", "203.0.113.201").failed() == 0.0


def test_a_pair_is_refused_until_its_window_ends(make_throttle: MakeThrottle) -> None:
    throttle, ticker = make_throttle(max_failures_per_pair=2, window_seconds=60)
    for _ in range(2):
        throttle.reserve("ada", "203.0.113.1").failed()
    with pytest.raises(TooManyRequests) as refused:
        throttle.reserve("ADA", "203.0.113.1")
    assert 0 < refused.value.retry_after <= 60
    ticker.now += 61
    throttle.reserve("ada", "203.0.113.1").succeeded()


def test_successes_give_back_the_address_reservation(make_throttle: MakeThrottle) -> None:
    throttle, _ = make_throttle(max_failures_per_address=3)
    # An office behind one address: many users log in, none fails.
    for index in range(20):
        throttle.reserve(f"user{index}", "203.0.113.1").succeeded()
    for index in range(3):
        throttle.reserve(f"guess{index}", "203.0.113.1").failed()
    with pytest.raises(TooManyRequests):
        throttle.reserve("someone", "203.0.113.1")


def test_in_flight_attempts_hold_their_place(make_throttle: MakeThrottle) -> None:
    throttle, _ = make_throttle(max_failures_per_pair=3)
    held = [throttle.reserve("ada", "203.0.113.1") for _ in range(3)]
    with pytest.raises(TooManyRequests):
        throttle.reserve("ada", "203.0.113.1")
    held[0].succeeded()
    # A success clears the pair: the owner, once in, starts afresh.
    throttle.reserve("ada", "203.0.113.1").failed()


def test_the_processes_of_one_serve_share_the_counts(tmp_path: Path) -> None:
    settings = LoginThrottleSettings.model_validate({"max_failures_per_pair": 4})
    first, second = (
        LoginThrottle(
            settings,
            counts=SharedWindowCounter(tmp_path / "login-windows", settings.window_seconds),
        )
        for _ in range(2)
    )
    for throttle in (first, second, first, second):
        throttle.reserve("ada", "203.0.113.1").failed()
    # Four failures in all, two in each process: the pair is refused by both.
    for throttle in (first, second):
        with pytest.raises(TooManyRequests):
            throttle.reserve("ada", "203.0.113.1")
