"""What a new user does after `make run`: the printed login works with plain HTTP."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready


def test_demo_login_from_the_banner(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--demo", "--port", str(port)],
            env=cli_env(tmp_path / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        banner = log.read_text()
        assert f"Sandbox base URL:    {base}/sandbox" in banner
        username = re.search(r"username: (\S+)", banner)
        password = re.search(r"password: (\S+)", banner)
        assert username and password, banner
        token_answer = httpx.post(
            f"{base}/sandbox/api/v4/auth/token",
            content=f'{{"username":"{username[1]}","password":"{password[1]}"}}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},  # what curl -d sends
        )
        assert token_answer.status_code == 200, token_answer.text
        token = token_answer.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        account = httpx.get(f"{base}/sandbox/api/v4/account", headers=headers)
        assert account.status_code == 200 and account.json()["environment"] == "sandbox"
        production = httpx.get(f"{base}/api/v4/account", headers=headers)
        assert production.status_code == 401
        assert production.json()["code"] == "wrong_environment"
    finally:
        stop(process)
    # A second start prints the same login instead of making another account.
    assert (tmp_path / "data" / "demo-credentials.json").exists()
