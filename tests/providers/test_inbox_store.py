"""The inbox on SQLite and PostgreSQL: it says how many of the reports it was handed
were new (a repeat of a stored provider and key is not), and its processor applies
receipts that come early, twice or out of order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import make_settings
from tests.providers.helpers import FAST, ORDINARY, app_running, applied, eventually, with_overrides
from tests.providers.test_contract import CASES, Provocation, harness
from tidings.messages.status import Status
from tidings.providers.base import RawReport
from tidings.providers.repository import RefRepository


async def test_store_counts_only_new_reports(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    async with app_running(make_settings(data_dir, database_url, **FAST)) as app:
        inbox = app.state.ctx.runtime.inbox

        def report(key: str) -> RawReport:
            # Due in an hour: nothing applies them while the test looks.
            return RawReport(dedupe_key=key, payload={"id": key}, due_in_seconds=3600)

        assert await inbox.store("prv_x", [report("a")]) == 1
        assert await inbox.store("prv_x", [report("a")]) == 0
        assert await inbox.store("prv_x", [report("b"), report("a"), report("c")]) == 2
        # The key is the provider's: another provider's "a" is new.
        assert await inbox.store("prv_y", [report("a")]) == 1


async def test_receipts_early_duplicated_and_out_of_order(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    """The processor's path on each database (on PostgreSQL it locks what it takes):
    a receipt for an id not recorded yet waits for it, repeats apply once, and a late
    report never moves a status back."""
    case = CASES[0]
    # The early receipt must still be waiting when its id is recorded, however long a
    # loaded machine takes to get there (the suite's unmatched wait is 0.3 s).
    quiet = with_overrides(
        with_overrides(FAST, **case.quiet_settings), providers={"unmatched_wait_seconds": 60.0}
    )
    async with harness(make_settings(data_dir, database_url, **quiet), case) as h:
        pid = await h.add(Provocation({}, ORDINARY))
        sent = await h.send(Provocation({}, ORDINARY), wait=True)
        assert sent["status"] == "sent"
        second = f"{sent['providerMessageId']}-2"
        await h.report(pid, second, Status.DELIVERED, "early")

        async def waiting() -> bool:
            rows = [r for r in await h.inbox_rows(pid) if r.dedupe_key == "early"]
            return rows[0].attempts >= 1 and rows[0].state == "pending"

        await eventually(waiting, "the early receipt waits for its id")
        async with h.app.state.ctx.sessions() as session:
            await RefRepository(session).add(
                [
                    {
                        "provider_id": pid,
                        "external_id": second,
                        "message_id": sent["id"],
                        "part": 2,
                        "recipient": None,
                        "created_at": datetime.now(UTC),
                    }
                ]
            )
            await session.commit()
        await h.until(sent["id"], Status.DELIVERED)
        for key in ("late-a", "late-b"):
            await h.report(pid, sent["providerMessageId"], Status.SENT, key)
            await h.report(pid, sent["providerMessageId"], Status.DELIVERED, key + "-d")

        async def done() -> bool:
            return all(
                row.state == "done"
                for row in await h.inbox_rows(pid)
                if not row.dedupe_key.startswith("sbx.")
            )

        await eventually(done, "every report applied")
        final = await h.read(sent["id"])
        assert applied(final) == ["queued", "sent", "delivered"]
        assert [e["status"] for e in final["events"]].count("delivered") == 1
