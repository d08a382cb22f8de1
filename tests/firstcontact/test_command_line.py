"""The command line (issue 17, item 6): users are listed, disabled, enabled, deleted and
get new passwords; account names are unique (existing duplicates renamed by migration
0011); settings that do not validate are said as sentences naming the variable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.conftest import make_settings
from tests.support.processes import TEST_SECRETS_KEYS, cli_env, run_cli
from tidings.app import create_app
from tidings.db import migrate
from tidings.db.engine import build_engine
from tidings.settings import Settings


def ok(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    result = run_cli(args, env, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def login_status(data: Path, username: str, password: str) -> int:
    settings = Settings(data_dir=data, secrets_keys=TEST_SECRETS_KEYS)  # type: ignore[arg-type]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                "/api/v4/auth/token", json={"username": username, "password": password}
            )
    return answer.status_code


async def test_users_from_creation_to_deletion(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = cli_env(data)
    ok(["migrate"], env)
    account = ok(["accounts", "create", "Acme Ltd"], env)
    user = ok(
        [
            "users",
            "create",
            "--account",
            "Acme Ltd",
            "--username",
            "ops@acme.test",
            "--password-stdin",
        ],
        env,
        stdin="first-passphrase\n",
    )
    assert ok(["users", "list"], env) == f"{user}\t{account}\tactive\tops@acme.test"
    assert ok(["users", "list", "--account", account], env).startswith(user)

    assert ok(["users", "disable", "ops@acme.test"], env) == user
    assert "\tdisabled\t" in ok(["users", "list"], env)
    assert await login_status(data, "ops@acme.test", "first-passphrase") == 401
    assert ok(["users", "enable", user], env) == user
    assert await login_status(data, "ops@acme.test", "first-passphrase") == 200

    ok(["users", "reset-password", "ops@acme.test", "--password-stdin"], env, "second-pass\n")
    assert await login_status(data, "ops@acme.test", "first-passphrase") == 401
    assert await login_status(data, "ops@acme.test", "second-pass") == 200
    short = run_cli(["users", "reset-password", user, "--password", "short"], env)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr

    assert ok(["users", "delete", user], env) == user
    assert ok(["users", "list"], env) == ""
    missing = run_cli(["users", "disable", "ops@acme.test"], env)
    assert missing.returncode == 1
    assert missing.stderr == "error: No user has the id or username 'ops@acme.test'.\n"


def test_account_names_are_unique(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    ok(["migrate"], env)
    first = ok(["accounts", "create", "Acme Ltd"], env)
    again = run_cli(["accounts", "create", "  Acme Ltd "], env)
    assert again.returncode == 1
    assert "An account named 'Acme Ltd' exists already" in again.stderr
    assert ok(["accounts", "list"], env) == f"{first}\t0\tAcme Ltd"
    assert ok(["credits", "balance", "Acme Ltd"], env) == "0"
    assert ok(["accounts", "set-country", "Acme Ltd", "it"], env) == f"{first}\tIT"
    bad = run_cli(["accounts", "set-country", "Acme Ltd", "Italy"], env)
    assert bad.returncode == 1 and "such as US, GB or IT" in bad.stderr
    assert ok(["accounts", "set-country", first, "none"], env) == f"{first}\tnone"


async def test_migration_0011_renames_existing_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = build_engine(make_settings(data, (f"sqlite+aiosqlite:///{data / 't.db'}", None)))
    try:
        await migrate.upgrade(engine, "0010")
        async with engine.begin() as connection:
            for number, account_id in enumerate(["acc_B", "acc_A", "acc_C"]):
                await connection.execute(
                    text("INSERT INTO accounts (id, name, created_at) VALUES (:id, 'Acme', :at)"),
                    {"id": account_id, "at": datetime(2026, 1, 1 + number, tzinfo=UTC)},
                )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            rows = dict((await connection.execute(text("SELECT id, name FROM accounts"))).all())
    finally:
        await engine.dispose()
    # The oldest keeps the name; the others say which account they are.
    assert rows == {"acc_B": "Acme", "acc_A": "Acme (acc_A)", "acc_C": "Acme (acc_C)"}


def test_settings_mistakes_are_sentences(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "data",
        TIDINGS_RATE_LIMIT__PER_MINUTE="many",
        TIDINGS_LOG_FORMAT="xml",
        TIDINGS_JWT_SECRET="a-secret-value-that-must-not-be-printed",
    )
    result = run_cli(["migrate"], env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: the configuration is not valid:",
        "  TIDINGS_RATE_LIMIT__PER_MINUTE: input should be a valid integer, unable to parse "
        "string as an integer.",
        "  TIDINGS_LOG_FORMAT: input should be 'text' or 'json'.",
    ]
    assert "Traceback" not in result.stderr and "many" not in result.stderr
