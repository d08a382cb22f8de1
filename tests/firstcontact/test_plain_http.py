"""Plain HTTP from another machine (issue 17, item 2): the probes answer, the refusal
says how to get HTTPS, and the banner prints addresses a user can open."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.processes import TIDINGS, cli_env, free_port, run_cli, stop, wait_ready
from tidings.app import create_app
from tidings.serve_banner import base_urls, port_problem

REMOTE = ("203.0.113.9", 40000)


async def _app(tmp_path: Path, **overrides: object) -> AsyncIterator[FastAPI]:
    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings(data, (f"sqlite+aiosqlite:///{data / 't.db'}", None), **overrides)
    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        yield application


def _remote_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=REMOTE)
    return httpx.AsyncClient(transport=transport, base_url="http://api.example.test:8000")


@pytest.fixture
async def plain_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async for application in _app(tmp_path):
        yield application


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_answer_plain_http_from_another_machine(plain_app: FastAPI, path: str) -> None:
    async with _remote_client(plain_app) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text


async def test_the_refusal_says_how_to_enable_tls_when_none_is_configured(
    plain_app: FastAPI,
) -> None:
    async with _remote_client(plain_app) as client:
        response = await client.get("/api/v4/account")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "https_required"
    # No https:// URL that does not exist; the two ways to get one instead.
    assert "https://" not in body["detail"]
    assert "--tls-cert" in body["detail"] and "TIDINGS_TLS_CERT_FILE" in body["detail"]
    assert "TIDINGS_TRUSTED_PROXIES" in body["detail"]


async def test_with_tls_configured_the_refusal_names_the_https_url(tmp_path: Path) -> None:
    async for application in _app(tmp_path, tls_cert_file=tmp_path / "cert.pem"):
        async with _remote_client(application) as client:
            response = await client.get("/api/v4/account")
        assert response.status_code == 403
        assert response.json()["detail"].startswith(
            "Use https://api.example.test:8000/api/v4/account instead"
        )


def test_wildcard_hosts_print_addresses_that_can_be_opened() -> None:
    urls = base_urls("0.0.0.0", 8000, tls=False)
    assert urls.local == "http://127.0.0.1:8000"
    assert urls.remote is None or "0.0.0.0" not in urls.remote
    assert base_urls("::", 8443, tls=True).local == "https://[::1]:8443"
    assert base_urls("api.example.com", 8443, tls=True) == ("https://api.example.com:8443", None)


def test_a_taken_port_is_named_in_a_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = port_problem("127.0.0.1", port)
    assert problem is not None and f"port {port}" in problem and "--port" in problem
    assert port_problem("127.0.0.1", free_port()) is None


def test_serve_on_a_taken_port_says_so_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--demo", "--port", str(port)], cli_env(tmp_path / "data"))
    assert result.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "password:" not in result.stderr and "Tidings is starting" not in result.stderr


def test_serve_on_all_interfaces_from_another_machine(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--demo", "--host", "0.0.0.0", "--port", str(port)],
            env=cli_env(tmp_path / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        banner = log.read_text().split("Uvicorn running")[0]
        assert "0.0.0.0" not in banner
        assert f"Production base URL: http://127.0.0.1:{port}" in banner
        remote = base_urls("0.0.0.0", port, tls=False).remote
        if remote is None:
            pytest.skip("this machine has no address besides loopback")
        assert f"From other machines: {remote}" in banner
        # This machine's outward address is not loopback: the server sees what another
        # machine's request would look like.
        assert httpx.get(f"{remote}/healthz", timeout=5).status_code == 200
        refused = httpx.get(f"{remote}/api/v4/account", timeout=5)
        assert refused.status_code == 403 and "--tls-cert" in refused.json()["detail"]
    finally:
        stop(process)
