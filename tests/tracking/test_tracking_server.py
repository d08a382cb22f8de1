"""Tracking against a real ``tidings serve`` process: a recipient's HTTP client reads
the kept email, loads the pixel and follows the link (redirects and all)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.load import make_login
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready


def test_a_recipient_opens_and_clicks_through_a_real_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _, username, password = make_login(data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=cli_env(data_dir, TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS="0.01"),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_ready(base, server)
        with httpx.Client(base_url=f"{base}/sandbox", timeout=10) as api:
            login = api.post(
                "/api/v4/auth/token", json={"username": username, "password": password}
            )
            api.headers["Authorization"] = f"Bearer {login.json()['token']}"
            sent = api.post(
                "/api/v4/email/send",
                json={
                    "to": "ada@example.com",
                    "from": "news@example.com",
                    "subject": "Hi",
                    "html": f'<p><a href="{base}/healthz">status</a></p>',
                },
            )
            assert sent.status_code == 200, sent.text
            message_id = sent.json()["id"]
            kept = api.get("/api/v4/sandbox/emails").json()["data"]
            [email] = [item for item in kept if item["messageId"] == message_id]
            html = api.get(f"/api/v4/sandbox/emails/{email['id']}").json()["html"]

            [pixel] = re.findall(r'<img src="([^"]+)"', html)
            [link] = re.findall(r'href="([^"]+/t/c/[^"]+)"', html)
            assert pixel.startswith(f"{base}/sandbox/t/o/") and link.startswith(base)
            with httpx.Client(timeout=10) as recipient:  # no token, like a mail client
                image = recipient.get(pixel)
                assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
                followed = recipient.get(link, follow_redirects=True)
                assert followed.status_code == 200 and followed.url == f"{base}/healthz"
                assert [r.status_code for r in followed.history] == [302]

            deadline = time.monotonic() + 10
            while True:
                found = api.get("/api/v4/email/events", params={"messageId": message_id}).json()
                if found["stats"]["delivered"] == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            types = sorted(event["type"] for event in found["data"])
            assert types == ["clicked", "delivered", "opened"]
            assert found["stats"]["uniqueOpens"] == 1 and found["stats"]["uniqueClicks"] == 1
            assert found["stats"]["openRate"] == 1.0
    finally:
        stop(server)
