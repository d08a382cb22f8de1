"""Migrations go up, down and up again, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tidings.db import migrate
from tidings.db.engine import build_engine
from tidings.db.models import Base


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


async def test_up_down_up(data_dir: Path, database_url: tuple[str, str | None]) -> None:
    engine = build_engine(make_settings(data_dir, database_url))
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _tables(engine) == set(Base.metadata.tables)
        await migrate.downgrade(engine, "base")
        assert await _tables(engine) == set()
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await _tables(engine) == set(Base.metadata.tables)
    finally:
        await engine.dispose()


async def test_models_match_the_migrations(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    """Autogenerate finds nothing to add: every model change came with a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = build_engine(make_settings(data_dir, database_url))
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()


async def test_accounts_made_before_templates_get_the_sandbox_seed_set(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from tidings.templates.seed_data import SEED

    engine = build_engine(make_settings(data_dir, database_url))
    try:
        await migrate.upgrade(engine, "0004")
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO accounts (id, name, created_at) VALUES (:id, 'Old', :at)"),
                {"id": "acc_01JDQ3W6V2X4N8ZB7YH5K9T0RM", "at": datetime.now(UTC)},
            )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT name, language, status, environment FROM whatsapp_templates")
                )
            ).all()
        assert sorted((r[0], r[1]) for r in rows) == sorted((s[0], s[1]) for s in SEED)
        assert {(r[2], r[3]) for r in rows} == {("APPROVED", "sandbox")}
    finally:
        await engine.dispose()


async def test_provider_configs_become_production_providers(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    engine = build_engine(make_settings(data_dir, database_url))
    account = "acc_01JDQ3W6V2X4N8ZB7YH5K9T0RM"
    try:
        await migrate.upgrade(engine, "0008")
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO accounts (id, name, created_at) VALUES (:id, 'Old', :at)"),
                {"id": account, "at": datetime.now(UTC)},
            )
            await connection.execute(
                text(
                    "INSERT INTO provider_configs (account_id, channel, kind, config, updated_at)"
                    " VALUES (:account, 'sms', 'simulator', '{}', :at)"
                ),
                {"account": account, "at": datetime.now(UTC)},
            )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT id, account_id, environment, channel, kind, priority, enabled,"
                        " health FROM providers"
                    )
                )
            ).all()
        assert len(rows) == 1
        provider_id, *rest = rows[0]
        assert provider_id.startswith("prv_") and len(provider_id) == 30
        assert tuple(rest) == (account, "production", "sms", "simulator", 1, True, "unknown")
    finally:
        await engine.dispose()
