"""``tidings providers ...``: the operator's path to the same service as the API.

Run in-process (the command line's own code, with the environment a deployment
gives it): add, list, show, update, check and remove; secrets only from stdin or a
file, kept when an update leaves them out, replaced when given, and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head, run_in_own_loop
from tests.support.processes import TEST_SECRETS_KEYS
from tests.support.users import create_test_user
from tidings.app import create_app
from tidings.cli import app as cli
from tidings.core.key_ring import KeyRing


@pytest.fixture
def account(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database with one account, and the environment ``tidings`` reads."""
    url = f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}"
    settings = make_settings(data_dir, (url, None))

    async def prepare() -> str:
        app = create_app(settings)
        try:
            await migrate_to_head(app)
            return (await create_test_user(app, "ops@example.com")).account_id
        finally:
            await app.state.ctx.engine.dispose()

    account_id = run_in_own_loop(prepare)
    for name in [n for n in os.environ if n.startswith("TIDINGS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TIDINGS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TIDINGS_DATABASE_URL", url)
    monkeypatch.setenv("TIDINGS_SECRETS_KEYS", TEST_SECRETS_KEYS)
    return account_id


def tidings(*args: str, stdin: str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["providers", *args], input=stdin)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def sealed(data_dir: Path, provider_id: str) -> dict[str, str]:
    """The provider's secrets as stored, opened with the deployment's key ring."""
    with sqlite3.connect(data_dir / "tidings.db") as connection:
        (stored,) = connection.execute(
            "SELECT secrets FROM providers WHERE id = ?", (provider_id,)
        ).fetchone()
    connection.close()
    ring = KeyRing.from_setting(TEST_SECRETS_KEYS, legacy=None)
    return {name: ring.open(value) for name, value in json.loads(stored).items()}


def test_add_show_update_check_remove(account: str, data_dir: Path, tmp_path: Path) -> None:
    first = "pw-" + secrets.token_hex(12)
    second = "pw-" + secrets.token_hex(12)
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None, code: int = 0) -> str:
        output = tidings(*args, stdin=stdin, code=code).output
        outputs.append(output)
        return output

    relay = json.dumps({"host": "127.0.0.1", "port": 1, "username": "ops", "timeoutSeconds": 2})
    smtp = run(
        "add",
        account,
        "email",
        "smtp",
        "--name",
        "Relay",
        "--config",
        relay,
        "--secrets-stdin",
        stdin=json.dumps({"password": first}),
    ).strip()
    assert smtp.startswith("prv_")
    assert sealed(data_dir, smtp) == {"password": first}
    simulator = run("add", account, "sms", "simulator", "--priority", "2").strip()

    listed = run("list", account).splitlines()
    assert sorted(line.split("\t")[:4] for line in listed) == sorted(
        [[smtp, "email", "smtp", "1"], [simulator, "sms", "simulator", "2"]]
    )
    shown = json.loads(run("show", account, smtp))
    assert shown["config"]["password"] == "********"
    assert (shown["name"], shown["config"]["host"]) == ("Relay", "127.0.0.1")

    # Left out (the config is given whole, its secret not): kept. From a file: replaced.
    moved = json.dumps({**json.loads(relay), "port": 2})
    run("update", account, smtp, "--name", "Relay 2", "--config", moved)
    assert sealed(data_dir, smtp) == {"password": first}
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"password": second}))
    updated = json.loads(
        run("update", account, smtp, "--config", moved, "--secrets-file", str(secrets_file))
    )
    assert updated["config"]["password"] == "********" and updated["name"] == "Relay 2"
    assert updated["config"]["port"] == 2
    assert sealed(data_dir, smtp) == {"password": second}

    assert run("check", account, simulator).startswith("ok (")
    failing = run("check", account, smtp, code=1)
    assert failing.startswith("failing (")

    bad = run("add", account, "sms", "simulator", "--config", '{"scenario": 3}', code=1)
    assert "config.scenario" in bad
    unknown = run("add", account, "sms", "carrier-pigeon", code=1)
    assert "kind" in unknown
    assert "no account" in run("list", "nobody-at-all", code=1).lower()

    run("remove", account, smtp)
    assert "There is no provider" in run("show", account, smtp, code=1)
    assert [line.split("\t")[0] for line in run("list", account).splitlines()] == [simulator]

    for output in outputs:
        assert first not in output and second not in output


def test_a_secret_on_the_command_line_is_refused(account: str) -> None:
    config = json.dumps({"host": "127.0.0.1", "systemId": "acme", "password": "on-argv"})
    result = tidings("add", account, "sms", "smpp", "--config", config, code=1)
    assert "password is a secret" in result.output
    assert "--secrets-stdin" in result.output
    assert tidings("list", account).output.strip() == ""


def test_an_update_with_only_a_secret_keeps_the_rest(account: str, data_dir: Path) -> None:
    config = json.dumps({"host": "127.0.0.1", "port": 2776, "systemId": "acme"})
    made = tidings(
        "add",
        account,
        "sms",
        "smpp",
        "--config",
        config,
        "--secrets-stdin",
        stdin=json.dumps({"password": "first"}),
    )
    provider_id = made.output.strip()
    tidings("update", account, provider_id, "--secrets-stdin", stdin='{"password": "second"}')
    shown = json.loads(tidings("show", account, provider_id).output)
    assert shown["config"]["host"] == "127.0.0.1" and shown["config"]["port"] == 2776
    assert shown["config"]["password"] == "********"
    assert sealed(data_dir, provider_id) == {"password": "second"}
