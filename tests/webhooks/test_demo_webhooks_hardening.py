"""`make run` (``tidings serve --demo``) lets sandbox webhooks reach this machine and
says so; deployments keep private destinations off."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready
from tidings.demo import PRIVATE_WEBHOOKS, demo_environment


def test_the_operator_s_choice_wins_over_the_demo() -> None:
    chosen = {PRIVATE_WEBHOOKS: "false"}
    assert demo_environment(chosen) == []
    assert chosen == {PRIVATE_WEBHOOKS: "false"}
    empty: dict[str, str] = {}
    notes = demo_environment(empty)
    assert empty == {PRIVATE_WEBHOOKS: "true"}
    assert any("loopback and private addresses" in line for line in notes)


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str, Path]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", *args, "--port", str(port)],
            env=cli_env(tmp_path / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return process, f"http://127.0.0.1:{port}", log


def _loopback_hook(base: str, username: str, password: str) -> httpx.Response:
    token = httpx.post(
        f"{base}/sandbox/api/v4/auth/token", json={"username": username, "password": password}
    ).json()["token"]
    return httpx.post(
        f"{base}/sandbox/api/v4/webhooks/create",
        json={"url": "http://127.0.0.1:9/hook"},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_demo_allows_loopback_webhooks_and_says_so(tmp_path: Path) -> None:
    process, base, log = _serve(tmp_path, "--demo")
    try:
        wait_ready(base, process)
        banner = log.read_text()
        assert "Sandbox webhooks may reach loopback and private addresses" in banner
        username = re.search(r"username: (\S+)", banner)
        password = re.search(r"password: (\S+)", banner)
        assert username and password, banner
        answer = _loopback_hook(base, username[1], password[1])
        assert answer.status_code == 201, answer.text
    finally:
        stop(process)
    # Without --demo (the same data, the same login): refused, and the banner is silent.
    process, base, log = _serve(tmp_path)
    try:
        wait_ready(base, process)
        assert "loopback" not in log.read_text()
        answer = _loopback_hook(base, username[1], password[1])
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "unsafe_webhook_url"
    finally:
        stop(process)
