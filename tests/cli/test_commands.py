"""The command line, as a script uses it: ids alone on stdout, no prompts."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.processes import cli_env, run_cli

ID = re.compile(r"^(acc|usr)_[0-9A-Z]{26}$")


def test_accounts_and_users(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(["migrate"], env).returncode == 0

    created = run_cli(["accounts", "create", "Acme Ltd"], env)
    assert created.returncode == 0, created.stderr
    account_id = created.stdout.strip()
    assert ID.match(account_id)

    user = run_cli(
        [
            "users",
            "create",
            "--account",
            account_id,
            "--username",
            "ops@acme.test",
            "--password-stdin",
        ],
        env,
        stdin="a long enough password\n",
    )
    assert user.returncode == 0, user.stderr
    assert ID.match(user.stdout.strip()) and user.stdout.startswith("usr_")

    by_flag = run_cli(
        [
            "users",
            "create",
            "--account",
            "Acme Ltd",
            "--username",
            "bot@acme.test",
            "--password",
            "another password",
        ],
        env,
    )
    assert by_flag.returncode == 0, by_flag.stderr

    listed = run_cli(["accounts", "list"], env)
    assert listed.stdout.strip() == f"{account_id}\t2\tAcme Ltd"


def test_problems_go_to_stderr_with_an_exit_code(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    run_cli(["migrate"], env)
    missing = run_cli(
        [
            "users",
            "create",
            "--account",
            "acc_nope",
            "--username",
            "x@y.z",
            "--password",
            "long password",
        ],
        env,
    )
    assert missing.returncode == 1 and missing.stdout == ""
    assert "acc_nope" in missing.stderr
    short = run_cli(["accounts", "create", "A"], env)
    account = short.stdout.strip()
    weak = run_cli(
        ["users", "create", "--account", account, "--username", "u@x.y", "--password", "short"], env
    )
    assert weak.returncode == 1 and "at least 8" in weak.stderr
    no_password = run_cli(["users", "create", "--account", account, "--username", "u@x.y"], env)
    assert no_password.returncode == 1


def test_version(tmp_path: Path) -> None:
    answer = run_cli(["version"], cli_env(tmp_path))
    assert re.match(r"^\d+\.\d+\.\d+$", answer.stdout.strip())
