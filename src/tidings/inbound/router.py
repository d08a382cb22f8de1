"""``/inbound/{kind}/{providerId}``: where networks post what they report.

Not under ``/api/v4``, no token and not in the OpenAPI document: the guard is
the network's own proof, checked by the provider kind's
:class:`~tidings.providers.webhook_adapter.WebhookAdapter` with the provider's
opened config (:meth:`~tidings.providers.directory.ProviderDirectory.config_of`).
The path names the provider's kind or its channel (Meta is given
``/inbound/whatsapp/<providerId>``).

- ``GET`` answers the network's verification handshake (Meta: ``hub.mode``,
  ``hub.verify_token``, ``hub.challenge`` echoed as text/plain); anything else 403.
- ``POST`` checks the signature over the raw bytes (401 ``invalid_signature``
  when missing or wrong: nothing is recorded), cuts the body into raw reports
  and stores them in the inbox, then answers 200 only after the commit, so a
  report Meta was told we have is never lost. A repeat is stored once (the inbox
  recognises its dedupe key). Reports naming another phone number of the same
  account (one Meta app may post every number's events to one URL) go to that
  number's provider; those naming a number no provider has are dropped and
  logged. Template decisions are applied to the template catalog in their own
  commit, before the answer too.

The body is read whole, up to the request body limit, before the route runs. A
provider's opened config is kept for 2 s (an unknown id too), so that posts to this
open, unlimited path cost at most one database read per provider every 2 s.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import OrderedDict, defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from tidings.api.deps import ContextDep
from tidings.context import AppContext
from tidings.core.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from tidings.core.key_ring import SecretUnavailable
from tidings.providers.base import RawReport
from tidings.providers.directory import Route
from tidings.providers.registry import ConfigProblem
from tidings.providers.webhook_adapter import WebhookAdapter
from tidings.templates.catalog import apply_updates

log = logging.getLogger("tidings.inbound")

router = APIRouter(include_in_schema=False)
MAX_CHALLENGE = 1000
PROVIDER_ID = re.compile(r"prv_[0-9A-Za-z]{1,40}")
# A change to a provider (a rotated app secret) is seen within this long.
CONFIG_TTL_SECONDS = 2.0
CONFIG_CACHE_SIZE = 1000


class InvalidSignature(ApiError):
    status = 401
    code = "invalid_signature"


class _Configs:
    """Providers' opened configs, trusted for a couple of seconds: this path is open
    to anyone and not rate limited, so a flood of posts (signed or not) must not
    become a flood of database reads."""

    def __init__(self) -> None:
        self._found: OrderedDict[str, tuple[float, tuple[Route, Any] | None]] = OrderedDict()

    async def get(self, ctx: AppContext, provider_id: str) -> tuple[Route, Any] | None:
        now = time.monotonic()
        cached = self._found.get(provider_id)
        if cached is not None and now - cached[0] < CONFIG_TTL_SECONDS:
            return cached[1]
        found = await ctx.runtime.providers.config_of(provider_id)
        self._found[provider_id] = (now, found)
        self._found.move_to_end(provider_id)
        while len(self._found) > CONFIG_CACHE_SIZE:
            self._found.popitem(last=False)
        return found


_configs = _Configs()


async def _provider(
    ctx: AppContext, name: str, provider_id: str
) -> tuple[Route, Any, WebhookAdapter]:
    missing = NotFound(f"There is no provider {provider_id!r} taking {name} webhooks here.")
    if not PROVIDER_ID.fullmatch(provider_id):
        raise missing
    try:
        found = await _configs.get(ctx, provider_id)
    except (SecretUnavailable, ConfigProblem):
        log.error("provider %s: webhook refused, its config cannot be opened", provider_id)
        # The network retries: once the config is fixed, the report goes through.
        raise ServiceUnavailable(
            "This provider's stored config cannot be opened; try again later.",
            code="provider_unavailable",
        ) from None
    if found is None:
        raise missing
    route, config = found
    spec = ctx.runtime.providers.kinds.get(route.kind)
    if spec is None or spec.webhook is None or name not in (route.kind, route.channel):
        raise missing
    return route, config, spec.webhook


@router.get("/inbound/{name}/{provider_id}")
async def handshake(name: str, provider_id: str, request: Request, ctx: ContextDep) -> Response:
    _route, config, adapter = await _provider(ctx, name, provider_id)
    challenge = adapter.handshake(config, request.query_params)
    if challenge is None or len(challenge) > MAX_CHALLENGE:
        log.warning("provider %s: a verification request was refused", provider_id)
        raise Forbidden(
            "The verification request does not match this provider's verify token.",
            code="verification_failed",
        )
    return PlainTextResponse(challenge)


@router.post("/inbound/{name}/{provider_id}")
async def receive(name: str, provider_id: str, request: Request, ctx: ContextDep) -> Response:
    route, config, adapter = await _provider(ctx, name, provider_id)
    raw = await request.body()
    if len(raw) > adapter.max_body_bytes:
        raise PayloadTooLarge(f"The body is larger than {adapter.max_body_bytes} bytes.")
    if not adapter.verify(config, request.headers, raw):
        log.warning("provider %s: a webhook with a missing or wrong signature", provider_id)
        raise InvalidSignature(
            "The signature is missing or does not match this provider's app secret."
        )
    try:
        split = adapter.split(raw)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(
            f"The body is not a webhook this provider reads: {error}.", code="invalid_body"
        ) from None
    stored = 0
    for target, reports in (await _by_provider(ctx, route, config, adapter, split.reports)).items():
        stored += await ctx.runtime.inbox.store(target, reports)
    updates = [u for u in split.templates if u.business_account_id == adapter.catalog_key(config)]
    if updates and route.account_id is not None:
        changed = await apply_updates(
            ctx.runtime.writer, route.account_id, route.environment, updates, ctx.clock.now()
        )
        if changed:
            ctx.runtime.wake()
    return PlainTextResponse("ok")


async def _by_provider(
    ctx: AppContext,
    route: Route,
    config: Any,
    adapter: WebhookAdapter,
    reports: list[tuple[str, RawReport]],
) -> dict[str, list[RawReport]]:
    own = adapter.route_key(config)
    targets: dict[str, str | None] = {own: route.id, "": route.id}
    grouped: dict[str, list[RawReport]] = defaultdict(list)
    for key, report in reports:
        if key not in targets:
            targets[key] = await _sibling(ctx, route, adapter, key)
        target = targets[key]
        if target is None:
            log.warning(
                "provider %s: a report for %s, which no provider of this account has",
                route.id,
                key,
            )
            continue
        grouped[target].append(report)
    return grouped


async def _sibling(ctx: AppContext, route: Route, adapter: WebhookAdapter, key: str) -> str | None:
    if route.account_id is None:
        return None
    for other in await ctx.runtime.providers.routes(
        route.account_id, route.environment, route.channel
    ):
        if other.kind == route.kind and adapter.route_key_of(other.config) == key:
            return other.id
    return None
