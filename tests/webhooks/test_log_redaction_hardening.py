"""Secrets in URLs never reach the logs: outgoing webhook URLs lose their query
strings, and the access log blanks known secret parameters (the chat-box token)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.processes import free_port
from tests.support.users import TestUser, bearer, login
from tests.webhooks.hook_receiver import Receiver
from tests.webhooks.test_webhook_delivery import eventually
from tidings.logging_setup import configure_logging, redact

SBX = "/sandbox/api/v4/webhooks"


@pytest.fixture
def production_logging() -> Iterator[None]:
    """The serving processes' log set-up, undone afterwards (capsys reads stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    watched = {name: logging.getLogger(name).filters[:] for name in ("httpx", "uvicorn.access")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, filters in watched.items():
            logging.getLogger(name).filters[:] = filters


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_outgoing_webhook_urls_lose_their_query_strings(
    production_logging: None,
    capsys: pytest.CaptureFixture[str],
    client: httpx.AsyncClient,
    user: TestUser,
    receiver: Receiver,
    log_format: str,
) -> None:
    configure_logging(log_format, "INFO")
    token = await login(client, user)
    created = await client.post(
        f"{SBX}/create",
        json={"url": f"{receiver.url}?api_key=s3cr3t-key&team=7"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    await client.post(f"{SBX}/{hook}/test", headers=bearer(token))
    await eventually(lambda: len(receiver.delivered()) == 1)
    assert receiver.delivered()[0].path == "/hook?api_key=s3cr3t-key&team=7"
    logged = ""
    for _ in range(200):  # httpx logs the attempt once the answer is in
        logged += capsys.readouterr().err
        if f"{receiver.port}/hook?" in logged:
            break
        await asyncio.sleep(0.02)
    assert f"HTTP Request: POST http://127.0.0.1:{receiver.port}/hook?[redacted]" in logged
    assert "s3cr3t-key" not in logged


async def test_the_access_log_blanks_the_chat_box_token(
    production_logging: None, capsys: pytest.CaptureFixture[str], app: FastAPI
) -> None:
    configure_logging("text", "INFO")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get("/sandbox/widget/whatsapp/chat-box?token=tok-s3cr3t&lang=it")
            await http.get("/sandbox/api/v4/account?access_token=acc-s3cr3t&Signature=sig-s3cr3t")
    finally:
        server.should_exit = True
        await serving
    logged = capsys.readouterr().err
    assert "/sandbox/widget/whatsapp/chat-box?token=[redacted]&lang=it" in logged
    assert "access_token=[redacted]&Signature=[redacted]" in logged
    assert "s3cr3t" not in logged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?token=abc HTTP/1.1", "GET /x?token=[redacted] HTTP/1.1"),
        ("/x?a=1&api_key=abc&b=2", "/x?a=1&api_key=[redacted]&b=2"),
        ("/x?KEY=abc;password=p", "/x?KEY=[redacted];password=[redacted]"),
        ("/x?monkey=banana&keyboard=1", "/x?monkey=banana&keyboard=1"),
        ("POST https://h.example/x?a=1&b=2 done", "POST https://h.example/x?[redacted] done"),
        ("https://h.example/x", "https://h.example/x"),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_exceptions_are_redacted_too(
    production_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    try:
        raise ValueError("cannot send to https://h.example/x?sig=s3cr3t")
    except ValueError:
        logging.getLogger("tidings.webhooks").exception("delivery failed")
    logged: Any = capsys.readouterr().err
    assert "delivery failed" in logged and "s3cr3t" not in logged


def test_configuring_logging_takes_uvicorns_loggers_back(production_logging: None) -> None:
    """A uvicorn started earlier in the process with its own level (or a logging
    config that disabled existing loggers) must not leave the access log silent."""
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.WARNING)
    access.disabled = True
    configure_logging("text", "INFO")
    assert access.getEffectiveLevel() == logging.INFO
    assert not access.disabled and access.propagate
