"""What a new user does first, run for real (issue 17, "what it must show"): a fresh
`tidings serve --demo` (the command `make run` starts, on an empty data directory),
then the README's quick start and the seed page's three examples (cURL, Python
`requests`, Node `fetch`) with only the base URL, the login and the chat id changed,
the webhook step included. The README's webhook goes to a receiver this test runs,
which must get signed deliveries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).parent / "seed_examples"


@dataclass
class Demo:
    base: str
    username: str
    password: str


@dataclass
class Receiver:
    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    scratch = tmp_path_factory.mktemp("quick-start")
    port = free_port()
    log = scratch / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(scratch / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, timeout=60)
        banner = log.read_text()
        # The login exactly as a user reads it off the banner.
        username = re.search(r"username: (\S+)", banner)
        password = re.search(r"password: (\S+)", banner)
        assert username and password, banner
        yield Demo(base, username[1], password[1])
    finally:
        stop(process)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            found.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def readme_quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README's quick start has no sh block"
    return match.group(1)


def json_documents(output: str) -> list[dict[str, Any]]:
    """Every JSON document in ``output`` (curl -s prints them without newlines)."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while True:
        while index < len(output) and output[index].isspace():
            index += 1
        if index >= len(output):
            return found
        document, index = decoder.raw_decode(output, index)
        found.append(document)


def test_the_readme_quick_start(demo: Demo, receiver: Receiver) -> None:
    script = readme_quick_start()
    # What a reader changes: the port, the printed password, the webhook receiver.
    script = script.replace("http://127.0.0.1:8000", demo.base)
    script = script.replace("<printed password>", demo.password)
    script = script.replace("demo@tidings.local", demo.username)
    script = script.replace("http://127.0.0.1:9000/hook", receiver.url)
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = json_documents(result.stdout)
    *steps, refused = answers
    assert refused["code"] == "wrong_environment"  # step 7, on purpose
    problems = [a for a in steps if isinstance(a.get("status"), int)]
    assert problems == [], problems
    account, chat, sms, listed, hook, notification, bulk = steps
    assert account["environment"] == "sandbox"
    assert chat["status"] in {"sent", "delivered", "read"}
    assert sms["id"].startswith("msg_") and sms["events"][0]["status"] == "queued"
    assert listed["data"] and listed["data"][0]["channel"] == "sms"
    assert hook["status"] == "active" and hook["warning"] is None
    assert notification["status"] in {"sent", "delivered", "read"}
    assert bulk["id"].startswith("bat_") and bulk["accepted"] == 2

    # The webhook receives signed events; any Standard Webhooks library verifies them.
    token = _login(demo)
    for _ in range(100):
        if receiver.posts:
            break
        httpx.get(f"{demo.base}/healthz")  # bounded wait for the first delivery
        threading.Event().wait(0.1)
    assert receiver.posts, "no webhook delivery arrived"
    headers, body = receiver.posts[0]
    event = Webhook(hook["secret"]).verify(body, headers)
    assert event["type"].startswith("message.")
    assert token


def _login(demo: Demo) -> str:
    answer = httpx.post(
        f"{demo.base}/sandbox/api/v4/auth/token",
        json={"username": demo.username, "password": demo.password},
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def _hellos(demo: Demo) -> int:
    answer = httpx.get(
        f"{demo.base}/sandbox/api/v4/messages?channel=whatsapp&limit=500",
        headers={"Authorization": f"Bearer {_login(demo)}"},
    )
    answer.raise_for_status()
    return sum(
        1
        for message in answer.json()["data"]
        if message["body"] == "Hello!"
        and message["to"] == "+393331234567"
        and message["status"] in {"sent", "delivered", "read"}
    )


def _runner(language: str) -> list[str]:
    if language == "curl":
        return ["bash", str(EXAMPLES / "seed_curl.sh")]
    if language == "python":
        pytest.importorskip("requests", reason="the seed's Python example needs requests")
        return [sys.executable, str(EXAMPLES / "seed_python.py")]
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the seed's Node example cannot run here")
    return [node, str(EXAMPLES / "seed_node.mjs")]


@pytest.mark.parametrize("language", ["curl", "python", "node"])
def test_the_seed_pages_examples(demo: Demo, language: str) -> None:
    before = _hellos(demo)
    result = subprocess.run(
        _runner(language),
        env={
            "PATH": "/usr/bin:/bin",
            "BASE": f"{demo.base}/sandbox",
            "USERNAME": demo.username,
            "PASSWORD": demo.password,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The seed page's webhook step answers {"status": "active"} with its own URL.
    assert '"status":"active"' in result.stdout.replace(" ", "") or result.stdout.endswith(
        "active\n"
    ), result.stdout
    # The send went through: one more "Hello!" to that chat, sent or beyond.
    assert _hellos(demo) == before + 1
