"""Housekeeping on SQLite and PostgreSQL: it deletes what is past its keeping, keeps
everything else, and deletes the two large tables a step at a time, each step its
own transaction, so no send waits behind one long delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, insert, select

from tests.conftest import make_settings
from tidings.accounts.models import Account
from tidings.core.clock import FrozenClock
from tidings.db import migrate
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.group_commit import GroupCommitter
from tidings.housekeeping import INBOX_KEPT, purge_once
from tidings.idempotency.models import IdempotencyKey
from tidings.idempotency.service import RETENTION
from tidings.providers.models import InboxEvent

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STEP = 100


def _key(index: int, created_at: datetime) -> dict[str, object]:
    return {
        "account_id": "acc_housekeeping",
        "environment": "production",
        "endpoint": "POST /api/v4/sms/send",
        "key": f"k{index}",
        "request_hash": "0" * 64,
        "created_at": created_at,
    }


def _report(index: int, state: str, received_at: datetime) -> dict[str, object]:
    return {
        "provider_id": "prv_housekeeping",
        "dedupe_key": f"r{index}",
        "payload": {"n": index},
        "state": state,
        "attempts": 0,
        "received_at": received_at,
        "due_at": received_at,
    }


async def test_purges_in_steps_and_keeps_what_is_still_kept(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    engine = build_engine(make_settings(data_dir, database_url))
    await migrate.upgrade(engine)
    sessions = build_sessionmaker(engine)
    expired = NOW - RETENTION - timedelta(minutes=5)
    old = NOW - INBOX_KEPT - timedelta(minutes=5)
    async with sessions() as session:
        session.add(Account(id="acc_housekeeping", name="Housekeeping", created_at=NOW))
        await session.flush()
        # 250 expired keys, 21 of them made in the same microsecond (straddling the
        # first step's end), and 7 still kept.
        keys = [_key(i, expired + timedelta(microseconds=i)) for i in range(230)]
        keys += [_key(230 + i, expired + timedelta(microseconds=95)) for i in range(20)]
        keys += [_key(300 + i, NOW - timedelta(hours=1)) for i in range(7)]
        await session.execute(insert(IdempotencyKey), keys)
        # 230 old reports applied, among them old ones parked or still pending (kept:
        # they were never applied), then newer ones applied (kept: under a week).
        reports = []
        for i in range(240):
            state = "parked" if i % 50 == 7 else "pending" if i == 100 else "done"
            reports.append(_report(i, state, old + timedelta(seconds=i)))
        reports += [_report(1000 + i, "done", NOW - timedelta(days=1)) for i in range(15)]
        await session.execute(insert(InboxEvent), reports)
        await session.commit()

    writer = GroupCommitter(sessions)
    commits: list[object] = []
    event.listen(engine.sync_engine, "commit", commits.append)
    try:
        deleted = await purge_once(writer, FrozenClock(NOW), step=STEP)
    finally:
        await writer.close()
    try:
        async with sessions() as session:
            kept_keys = set(await session.scalars(select(IdempotencyKey.key)))
            kept_reports = {
                key: state
                for key, state in (
                    await session.execute(select(InboxEvent.dedupe_key, InboxEvent.state))
                ).all()
            }
    finally:
        await engine.dispose()

    assert kept_keys == {f"k{300 + i}" for i in range(7)}
    never_applied = {f"r{i}": "parked" for i in (7, 57, 107, 157, 207)} | {"r100": "pending"}
    assert kept_reports == never_applied | {f"r{1000 + i}": "done" for i in range(15)}
    assert deleted == 250 + 240 - len(never_applied)
    # One transaction for the small tables; the keys in three steps (the 116 up to
    # and with the 21 of one microsecond, 101, then the 33 left); the reports in three
    # (the first 100 stored, the next 100, then the 40 old ones before the first new
    # one). None holds the writer for a whole table.
    assert len(commits) == 1 + 3 + 3
