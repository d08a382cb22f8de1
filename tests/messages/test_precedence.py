"""Sends take precedence over deliveries while their writes wait for a congested
writer: when it starts and ends, and what it changes (an asynchronous send is left
for a claim, a waiting one is still delivered at once, and both are delivered)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login
from tidings.messages.precedence import SendPrecedence

MS = 1_000_000
INTERVAL = 100 * MS  # 0.1 s


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def interval(precedence: SendPrecedence, clock: Clock, sends: int, waited_ms: float) -> bool:
    """``sends`` sends stored within one interval, each after ``waited_ms``; the state
    decided at its end."""
    for _ in range(sends):
        precedence.send_stored(int(waited_ms * MS))
    clock.now += INTERVAL
    return precedence.sample()


def test_it_starts_when_many_sends_wait_long_and_ends_when_they_stop_waiting() -> None:
    clock = Clock()
    precedence = SendPrecedence(monotonic_ns=clock)
    assert interval(precedence, clock, 200, 2.0) is False  # a writer keeping up
    assert interval(precedence, clock, 200, 9.0) is True  # congested
    assert interval(precedence, clock, 200, 4.0) is True  # better, not yet clear
    assert interval(precedence, clock, 200, 2.0) is False  # clear
    assert interval(precedence, clock, 200, 4.0) is False  # not congested enough to start


def test_a_few_slow_sends_do_not_start_it_and_too_few_end_it() -> None:
    clock = Clock()
    precedence = SendPrecedence(monotonic_ns=clock)
    # 5 in 0.1 s is 50 a second: a slow disk, not a crowd of senders.
    assert interval(precedence, clock, 5, 50.0) is False
    assert interval(precedence, clock, 20, 9.0) is True
    assert interval(precedence, clock, 0, 0.0) is False


def test_it_is_decided_once_an_interval() -> None:
    clock = Clock()
    precedence = SendPrecedence(monotonic_ns=clock)
    assert interval(precedence, clock, 200, 9.0) is True
    for _ in range(50):
        precedence.send_stored(0)
    clock.now += INTERVAL // 2
    assert precedence.sample() is True


def test_turned_off_it_never_starts() -> None:
    clock = Clock()
    precedence = SendPrecedence(enabled=False, monotonic_ns=clock)
    assert interval(precedence, clock, 1_000, 100.0) is False


@pytest.fixture
def sends_first(app: FastAPI) -> SendPrecedence:
    """The app's sends taking precedence, and staying so (its clock does not move)."""
    runtime = app.state.ctx.runtime
    precedence = SendPrecedence(monotonic_ns=lambda: 0)
    precedence.yielding = True
    runtime.precedence = precedence
    runtime.dispatcher._precedence = precedence
    return precedence


async def test_while_sends_take_precedence_an_async_send_is_claimed_and_delivered(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, sends_first: SendPrecedence
) -> None:
    token = await login(client, user)
    dispatcher = app.state.ctx.runtime.dispatcher
    adopted = dispatcher.adoptions
    answers = [
        await client.post(
            "/sandbox/api/v4/sms/send",
            json={"to": "+393331234567", "body": f"Hi {n}"},
            headers={**bearer(token), "Prefer": "respond-async"},
        )
        for n in range(3)
    ]
    assert [answer.status_code for answer in answers] == [202, 202, 202]
    for answer in answers:
        await wait_for(client, token, answer.json()["id"], {"delivered"})
    # Each was claimed from the table, none handed over at its send.
    assert dispatcher.adoptions == adopted
    # A waiting send is still handed over, and answered with its verdict.
    waiting = await client.post(
        "/sandbox/api/v4/sms/send",
        json={"to": "+393331234567", "body": "Hi"},
        headers=bearer(token),
    )
    assert waiting.status_code == 200 and waiting.json()["status"] == "sent"
    assert dispatcher.adoptions == adopted + 1
    assert sends_first.yielding


async def test_otherwise_an_async_send_is_handed_to_the_dispatcher(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    dispatcher = app.state.ctx.runtime.dispatcher
    adopted = dispatcher.adoptions
    answer = await client.post(
        "/sandbox/api/v4/sms/send",
        json={"to": "+393331234567", "body": "Hi"},
        headers={**bearer(token), "Prefer": "respond-async"},
    )
    assert answer.status_code == 202
    await wait_for(client, token, answer.json()["id"], {"delivered"})
    assert dispatcher.adoptions == adopted + 1
