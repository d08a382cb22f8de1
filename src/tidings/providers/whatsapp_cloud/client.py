"""The Graph API over HTTP: one pooled ``httpx.AsyncClient`` per provider.

The client is made at the first request, not when the provider is built, and
every answer that is not a success becomes an error of the kind's table
(:mod:`.errors`). The access token travels only in the ``Authorization`` header
and is never logged; Graph's own error messages never contain it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tidings.providers.errors import ConnectionDown, RetryableDeliveryError
from tidings.providers.whatsapp_cloud.config import WhatsAppCloudConfig
from tidings.providers.whatsapp_cloud.errors import error_of

CONNECT_TIMEOUT_SECONDS = 5.0
# A send Graph has not answered in this long may still have been taken: the retry
# that follows is the price of not losing it.
READ_TIMEOUT_SECONDS = 20.0
# Connections kept open to Graph: enough for 80 messages a second at ~0.5 s each.
MAX_CONNECTIONS = 64


class GraphClient:
    def __init__(self, config: WhatsAppCloudConfig, transport: Any = None) -> None:
        self._base = f"{config.base_url}/{config.api_version}/"
        self._token = config.access_token
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base,
                transport=self._transport,
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
                ),
                follow_redirects=False,
            )
        return self._client

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", path, json_body=body)

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return await self._request("GET", path, params=params)

    async def get_url(self, url: str) -> dict[str, Any]:
        """A ``paging.next`` link, which Graph gives absolute (its own host only)."""
        if not url.startswith(self._base):
            raise RetryableDeliveryError(
                "provider_error", "Graph gave a next page outside its own address."
            )
        return await self._request("GET", url)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            answer = await self._http().request(method, path, json=json_body, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise ConnectionDown(
                "provider_unreachable", f"Graph cannot be reached: {type(error).__name__}."
            ) from None
        except httpx.TimeoutException as error:
            raise RetryableDeliveryError(
                "provider_timeout", f"Graph did not answer in time ({type(error).__name__})."
            ) from None
        except httpx.HTTPError as error:
            raise RetryableDeliveryError(
                "provider_unavailable", f"Talking to Graph failed: {type(error).__name__}."
            ) from None
        try:
            body: Any = answer.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if answer.status_code >= 300 or not isinstance(body, dict):
            raise error_of(answer.status_code if answer.status_code >= 300 else 502, body)
        return body

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
