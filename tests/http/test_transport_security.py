"""TransportSecurityMiddleware: proxy trust, plain-HTTP refusal and HSTS, over ASGI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from starlette.responses import JSONResponse
from starlette.types import Message, Scope

from tidings.http.transport import TransportSecurityMiddleware

HSTS = "max-age=31536000; includeSubDomains"
PROXY = "10.0.0.5"
REMOTE = "203.0.113.9"


def build_app(trusted_proxies: list[str] | None = None) -> TransportSecurityMiddleware:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        assert request.client is not None
        return {
            "client": request.client.host,
            "port": request.client.port,
            "scheme": request.url.scheme,
        }

    @app.get("/own-hsts")
    async def own_hsts() -> JSONResponse:
        return JSONResponse({}, headers={"Strict-Transport-Security": "max-age=0"})

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"scheme": websocket.url.scheme})
        await websocket.close()

    return TransportSecurityMiddleware(
        app,
        trusted_proxies=trusted_proxies if trusted_proxies is not None else [PROXY, "fd00::/8"],
        hsts_max_age=31536000,
    )


async def get(
    peer: str,
    *,
    scheme: str = "http",
    headers: list[tuple[str, str]] | None = None,
    trusted_proxies: list[str] | None = None,
    path: str = "/echo",
) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(trusted_proxies), client=(peer, 1234))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://api.test") as client:
        return await client.get(path, headers=headers)


def assert_https_required(response: httpx.Response) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "https_required"
    assert body["status"] == 403
    assert body["detail"].startswith("Use https://api.test/echo")
    assert "only accepted from this machine" in body["detail"]
    # HSTS means nothing over plain HTTP (RFC 6797 8.1); don't pretend.
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
async def test_plain_http_from_loopback_is_allowed(peer: str) -> None:
    response = await get(peer)
    assert response.status_code == 200
    assert response.json()["scheme"] == "http"
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("peer", [REMOTE, "2001:db8::7", "::ffff:203.0.113.9", "192.168.1.20"])
async def test_plain_http_from_elsewhere_is_refused(peer: str) -> None:
    assert_https_required(await get(peer))


async def test_direct_https_gets_hsts() -> None:
    response = await get(REMOTE, scheme="https")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == HSTS
    assert response.json() == {"client": REMOTE, "port": 1234, "scheme": "https"}


async def test_route_that_sets_its_own_hsts_keeps_it() -> None:
    response = await get(REMOTE, scheme="https", path="/own-hsts")
    assert response.headers.get_list("strict-transport-security") == ["max-age=0"]


async def test_errors_over_https_carry_hsts_too() -> None:
    response = await get(REMOTE, scheme="https", path="/nowhere")
    assert response.status_code == 404
    assert response.headers["strict-transport-security"] == HSTS


async def test_trusted_proxy_reporting_https_is_allowed_and_rewritten() -> None:
    response = await get(
        PROXY,
        headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-For", REMOTE)],
    )
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == HSTS
    assert response.json() == {"client": REMOTE, "port": 0, "scheme": "https"}


async def test_trusted_proxy_reporting_https_without_client_keeps_peer() -> None:
    response = await get(PROXY, headers=[("X-Forwarded-Proto", "https")])
    assert response.status_code == 200
    assert response.json()["client"] == PROXY
    assert response.json()["scheme"] == "https"


async def test_trusted_proxy_reporting_http_is_refused() -> None:
    response = await get(
        PROXY, headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", REMOTE)]
    )
    assert_https_required(response)


async def test_trusted_proxy_reporting_http_for_a_local_client_is_allowed() -> None:
    # e.g. curl on the proxy machine itself, through the proxy, over plain HTTP.
    response = await get(
        PROXY, headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1")]
    )
    assert response.status_code == 200
    assert response.json() == {"client": "127.0.0.1", "port": 0, "scheme": "http"}


async def test_trusted_proxy_reporting_http_without_client_is_refused() -> None:
    # Without X-Forwarded-For the client may be anyone, not provably this machine.
    assert_https_required(await get(PROXY, headers=[("X-Forwarded-Proto", "http")]))


async def test_trusted_proxy_forwarding_for_a_remote_client_without_proto_is_refused() -> None:
    assert_https_required(await get(PROXY, headers=[("X-Forwarded-For", REMOTE)]))


async def test_loopback_proxy_forwarding_a_remote_plain_http_client_is_refused() -> None:
    # The default trust list includes loopback: a local nginx must not make every
    # remote plain-HTTP client look local.
    response = await get(
        "127.0.0.1",
        headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", REMOTE)],
        trusted_proxies=["127.0.0.1", "::1"],
    )
    assert_https_required(response)


@pytest.mark.parametrize("peer", [REMOTE, "2001:db8::7"])
async def test_untrusted_peer_cannot_claim_https(peer: str) -> None:
    response = await get(
        peer, headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "127.0.0.1")]
    )
    assert_https_required(response)


async def test_untrusted_peer_forwarded_headers_are_ignored_over_https() -> None:
    response = await get(
        REMOTE,
        scheme="https",
        headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "198.51.100.1")],
    )
    assert response.status_code == 200
    assert response.json() == {"client": REMOTE, "port": 1234, "scheme": "https"}


async def test_untrusted_loopback_peer_may_not_impersonate_via_headers() -> None:
    # Loopback is allowed plain HTTP, but its headers are still not believed when
    # loopback is not in the trusted list.
    response = await get(
        "127.0.0.1",
        headers=[("X-Forwarded-For", REMOTE)],
        trusted_proxies=[PROXY],
    )
    assert response.status_code == 200
    assert response.json()["client"] == "127.0.0.1"


async def test_last_forwarded_proto_wins() -> None:
    refused = await get(PROXY, headers=[("X-Forwarded-Proto", "https, http")])
    assert_https_required(refused)
    allowed = await get(
        PROXY, headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-Proto", " HTTPS ")]
    )
    assert allowed.status_code == 200
    assert allowed.json()["scheme"] == "https"


async def test_unknown_forwarded_proto_is_ignored() -> None:
    response = await get(
        PROXY, headers=[("X-Forwarded-Proto", "gopher"), ("X-Forwarded-For", REMOTE)]
    )
    assert_https_required(response)


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        # The rightmost hop that is not ours is the client; the left part is hearsay.
        ("198.51.100.66, 203.0.113.9", REMOTE),
        ("198.51.100.66, 203.0.113.9, 10.0.0.5", REMOTE),
        ("198.51.100.66, 203.0.113.9, fd00::1", REMOTE),
        # Spread over several header lines, as some proxies do.
        (["198.51.100.66", "203.0.113.9", "10.0.0.5"], REMOTE),
        # Ports and brackets.
        ("203.0.113.9:5555", REMOTE),
        ("[2001:db8::7]:5555", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        ("::ffff:203.0.113.9", REMOTE),
        # Every hop trusted: the leftmost is the client.
        ("10.0.0.5, fd00::1", PROXY),
        # Empty entries are skipped, not taken as the client.
        ("203.0.113.9, , ", REMOTE),
        # A hop that is not an address stops the walk; it is not trusted.
        ("198.51.100.66, unknown", "unknown"),
    ],
)
async def test_forwarded_for_chain(chain: str | list[str], expected: str) -> None:
    values = chain if isinstance(chain, list) else [chain]
    headers = [("X-Forwarded-Proto", "https")] + [("X-Forwarded-For", v) for v in values]
    response = await get(PROXY, headers=headers)
    assert response.status_code == 200
    assert response.json()["client"] == expected


async def test_spoofed_loopback_left_of_a_real_client_does_not_count() -> None:
    response = await get(
        PROXY,
        headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "127.0.0.1, 203.0.113.9")],
    )
    assert_https_required(response)


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        (["10.0.0.0/8"], "10.20.30.40"),
        (["fd00::/8"], "fd12:3456::1"),
        (["2001:db8::1"], "2001:0db8:0000::0001"),
        (["::ffff:10.0.0.5"], "10.0.0.5"),
        (["::ffff:10.0.0.0/104"], "::ffff:10.1.2.3"),
        (["10.0.0.5"], "::ffff:10.0.0.5"),
        (["*"], "198.51.100.200"),
    ],
)
async def test_trusted_proxy_forms(trusted: list[str], peer: str) -> None:
    response = await get(
        peer,
        headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-For", REMOTE)],
        trusted_proxies=trusted,
    )
    assert response.status_code == 200
    assert response.json() == {"client": REMOTE, "port": 0, "scheme": "https"}


async def test_unix_socket_peer_is_treated_as_loopback() -> None:
    # uvicorn --uds gives no peer address; only local processes can reach the socket.
    transport = httpx.ASGITransport(app=build_app(["127.0.0.1"]), client=None)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        direct = await client.get("/nowhere")
        proxied = await client.get(
            "/echo", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": REMOTE}
        )
        refused = await client.get(
            "/echo", headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": REMOTE}
        )
    assert direct.status_code == 404
    assert proxied.json() == {"client": REMOTE, "port": 0, "scheme": "https"}
    assert_https_required(refused)


async def test_ipv4_mapped_peer_is_reported_as_ipv4() -> None:
    response = await get("::ffff:127.0.0.1")
    assert response.json()["client"] == "127.0.0.1"


async def test_ipv6_client_through_ipv6_proxy() -> None:
    response = await get(
        "fd00::5",
        headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "2001:db8::42")],
    )
    assert response.status_code == 200
    assert response.json() == {"client": "2001:db8::42", "port": 0, "scheme": "https"}


async def test_ipv6_loopback_client_through_proxy_may_use_http() -> None:
    response = await get(
        "fd00::5", headers=[("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "::1")]
    )
    assert response.status_code == 200
    assert response.json()["client"] == "::1"


@pytest.mark.parametrize("bad", ["proxy.internal", "10.0.0.0/33", "not an ip"])
def test_invalid_trusted_proxy_is_rejected_at_startup(bad: str) -> None:
    with pytest.raises(ValueError, match="trusted proxy"):
        TransportSecurityMiddleware(FastAPI(), trusted_proxies=[bad], hsts_max_age=60)


def test_negative_hsts_is_rejected() -> None:
    with pytest.raises(ValueError, match="hsts_max_age"):
        TransportSecurityMiddleware(FastAPI(), trusted_proxies=[], hsts_max_age=-1)


async def test_hsts_max_age_is_configurable() -> None:
    inner = FastAPI()

    @inner.get("/")
    async def root() -> dict[str, str]:
        return {}

    app = TransportSecurityMiddleware(inner, trusted_proxies=[], hsts_max_age=600)
    transport = httpx.ASGITransport(app=app, client=(REMOTE, 1))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        response = await client.get("/")
    assert response.headers["strict-transport-security"] == "max-age=600; includeSubDomains"


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    app = TransportSecurityMiddleware(inner, trusted_proxies=[], hsts_max_age=60)
    await app({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def ws_handshake(peer: str, headers: list[tuple[str, str]] | None = None) -> list[Message]:
    """Run one WebSocket session at the ASGI level and return what the app sent."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.test")]
        + [(k.lower().encode(), v.encode()) for k, v in headers or []],
        "client": (peer, 1234),
        "server": ("api.test", 80),
        "subprotocols": [],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    async with asyncio.timeout(5):
        await build_app()(scope, receive, send)
    return sent


async def test_websocket_from_loopback_is_allowed() -> None:
    sent = await ws_handshake("127.0.0.1")
    assert sent[0]["type"] == "websocket.accept"
    assert json.loads(sent[1]["text"]) == {"scheme": "ws"}


async def test_plain_websocket_from_elsewhere_is_closed_with_1008() -> None:
    sent = await ws_handshake(REMOTE)
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


async def test_websocket_through_proxy_reporting_https_is_wss() -> None:
    sent = await ws_handshake(PROXY, [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", REMOTE)])
    assert sent[0]["type"] == "websocket.accept"
    assert json.loads(sent[1]["text"]) == {"scheme": "wss"}


async def test_untrusted_websocket_cannot_claim_wss() -> None:
    sent = await ws_handshake(REMOTE, [("X-Forwarded-Proto", "wss")])
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008
