"""Prometheus metrics: requests by route and status, and a latency histogram.

The registry belongs to the application (not the process-wide default), so
several apps in one process (tests) never share counters. The processes of one
``serve --workers N`` sum theirs at each scrape (:mod:`tidings.http.shared_metrics`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.http.environment import get_route_path
from tidings.http.shared_metrics import exposition

_MAX_CACHED = 4096


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tidings_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tidings_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        # The labelled children, found once: ``labels`` checks and joins its labels
        # under a lock on every call, several microseconds a request.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def record(self, template: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its time (the same series as through
        ``labels``)."""
        counted = self._counted.get((template, method, status))
        if counted is None:
            if len(self._counted) >= _MAX_CACHED:  # bounded: clients choose methods
                self._counted.clear()
            counted = self._counted[template, method, status] = self.requests.labels(
                template, method, str(status)
            )
        timed = self._timed.get(template)
        if timed is None:
            if len(self._timed) >= _MAX_CACHED:
                self._timed.clear()
            timed = self._timed[template] = self.latency.labels(template)
        counted.inc()
        timed.observe(seconds)

    async def endpoint(
        self,
        request: Request,
        counted: Sequence[CollectorRegistry] = (),
        live: Sequence[CollectorRegistry] = (),
    ) -> Response:
        """The scrape: these metrics, ``counted`` registries' counters and histograms,
        and ``live`` registries' collectors (see :func:`shared_metrics.exposition`)."""
        body = exposition([self.registry, *counted], live)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self._metrics.record(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The ``route`` label of a request: its route's template, or see :func:`_page_path`."""
    route = scope.get("route")
    return getattr(route, "path", None) or _page_path(scope)


def _page_path(scope: Scope) -> str:
    """The label of a request no API route matched: a page's own path (the landing page,
    /docs, /openapi.json are plain routes without parameters), else ``unmatched``."""
    # A function endpoint is a page route; mounted apps (static files) stay unmatched,
    # as their paths are many.
    if inspect.isfunction(scope.get("endpoint")) and not scope.get("path_params"):
        return get_route_path(scope) or "/"
    return "unmatched"
