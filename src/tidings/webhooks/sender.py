"""One webhook POST, connected to the vetted address, never following redirects.

The request goes to the IP address the SSRF check approved, with the original
``Host`` header and, over HTTPS, the original name as TLS SNI, against which the
certificate is verified. One HTTP client per host name keeps pooled connections
from being shared between names that happen to share an address.

The first bytes of the answer are kept for the deliveries log only when the
address is public: a private service's answer (allowed in the sandbox demo) would
otherwise be readable by whoever pointed a webhook at it.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from tidings.webhooks.ssrf import Target, is_private

MAX_CLIENTS = 256


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Sender:
    def __init__(
        self,
        *,
        timeout: float,
        excerpt_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._excerpt_bytes = excerpt_bytes
        self._transport = transport
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.pop(host, None)
        if client is None:
            client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
                transport=self._transport,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            )
            if len(self._clients) >= MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(oldest.aclose())
        self._clients[host] = client
        return client

    async def post(self, url: str, target: Target, headers: dict[str, str], body: bytes) -> Outcome:
        started = time.monotonic()
        try:
            original = httpx.URL(url)
            pinned = original.copy_with(host=target.addresses[0])
            request_headers = {**headers, "host": original.netloc.decode("ascii")}
        except (httpx.InvalidURL, ValueError):
            # The SSRF check passed it, yet httpx cannot send it: this endpoint's
            # problem, answered like any failed attempt (no traceback, no loop).
            return Outcome(None, "unsafe_webhook_url: the URL cannot be sent", 0, None)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        keep_answer = not is_private(ipaddress.ip_address(target.addresses[0]))
        client = self._client(target.host)
        try:
            async with asyncio.timeout(self._timeout):
                request = client.build_request(
                    "POST", pinned, headers=request_headers, content=body, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    excerpt = await self._excerpt(response) if keep_answer else None
                finally:
                    await response.aclose()
        except TimeoutError:
            return Outcome(None, f"timeout after {self._timeout:g} s", _ms(started), None)
        except httpx.HTTPError as error:
            return Outcome(None, _describe(error), _ms(started), None)
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"), datetime.now(UTC)
            )
        return Outcome(response.status_code, None, _ms(started), excerpt, retry_after)

    async def _excerpt(self, response: httpx.Response) -> str:
        data = b""
        async for chunk in response.aiter_raw():
            data += chunk
            if len(data) >= self._excerpt_bytes:
                break
        return data[: self._excerpt_bytes].decode("utf-8", "replace")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(error: httpx.HTTPError) -> str:
    kind = type(error).__name__
    detail = str(error) or kind
    return f"{kind}: {detail}"[:500]
