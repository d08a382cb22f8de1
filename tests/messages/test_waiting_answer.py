"""A waiting send answers ``sent`` or ``failed`` (spec section 4), even when it reads its
message back after the receipt already moved it on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.providers.helpers import app_running
from tests.support.databases import migrate_to_head
from tests.support.messages import wait_for
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.messages.schemas import MessageError, MessageEventOut, MessageOut
from tidings.messages.service import verdict_view
from tidings.messages.status import Status

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _message(status: Status, events: list[tuple[Status, bool]]) -> MessageOut:
    return MessageOut(
        id="msg_x",
        channel="sms",
        direction="outbound",
        environment="sandbox",
        to="+393331234567",
        status=status,
        credits=0,
        error=MessageError(code="handset_unreachable", message="Unreachable.")
        if status == Status.UNDELIVERED
        else None,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=len(events)),
        events=[
            MessageEventOut(status=event, at=T0 + timedelta(seconds=i), applied=applied)
            for i, (event, applied) in enumerate(events)
        ],
    )


def test_a_message_moved_on_is_shown_as_its_verdict_left_it() -> None:
    out = verdict_view(
        _message(
            Status.UNDELIVERED,
            [(Status.QUEUED, True), (Status.SENT, True), (Status.UNDELIVERED, True)],
        )
    )
    assert out.status == Status.SENT and out.error is None
    assert [event.status for event in out.events or []] == [Status.QUEUED, Status.SENT]
    assert out.updated_at == T0 + timedelta(seconds=1)


def test_verdicts_and_unsettled_messages_are_shown_as_they_are() -> None:
    for status in (Status.SENT, Status.FAILED, Status.QUEUED):
        message = _message(status, [(Status.QUEUED, True), (status, True)])
        assert verdict_view(message) == message


async def test_an_answer_read_back_after_the_receipt_says_sent(
    data_dir: Path, sqlite_url: tuple[str, str | None]
) -> None:
    """An API process that does not deliver (``serve --no-dispatch``) learns the verdict
    another process recorded by reading the message back (SQLite has no push); by then
    the sandbox's receipt, 10 ms after the verdict, has made it ``delivered``."""
    api = create_app(make_settings(data_dir, sqlite_url, dispatch=False))
    await migrate_to_head(api)
    async with (
        api.router.lifespan_context(api),
        app_running(make_settings(data_dir, sqlite_url)),
    ):
        transport = httpx.ASGITransport(app=api, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            token = await login(http, await create_test_user(api))
            answer = await http.post(
                "/sandbox/api/v4/sms/send",
                json={"to": "+393331234567", "body": "Code 1"},
                headers=bearer(token),
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["status"] == "sent", body
            assert [event["status"] for event in body["events"]] == ["queued", "sent"]
            now = await wait_for(http, token, body["id"], {"delivered"})
            assert now["events"][-1]["status"] == "delivered"
