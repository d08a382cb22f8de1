"""The inbox says how many of the reports it was handed were new (a repeat of a stored
provider and key is not), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from tests.providers.helpers import FAST, app_running
from tidings.providers.base import RawReport


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
