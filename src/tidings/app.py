"""The application factory: ``create_app(settings)`` builds one Tidings service.

Middleware, outermost first: request id, metrics, transport security (HTTPS and
trusted proxies), environment (sandbox or production), rate limit (which verifies
the caller's token first), the authentication gate (401 before any body is read),
request body (size and JSON), phone reading, unexpected errors, the console's
headers (run as one layer, :mod:`tidings.http.edge`); then FastAPI's routing with
the problem+json handlers.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.middleware import Middleware

from tidings import __version__
from tidings.accounts.countries import AccountCountries
from tidings.accounts.router import router as account_router
from tidings.api.batches import router as batches_router
from tidings.api.bulk import router as bulk_router
from tidings.api.chats import router as chats_router
from tidings.api.contacts import router as contacts_router
from tidings.api.deps import routes_needing_principal, verify_bearer
from tidings.api.domains import router as domains_router
from tidings.api.email import router as email_router
from tidings.api.email_events import router as email_events_router
from tidings.api.iframes import router as iframes_router
from tidings.api.lists import router as lists_router
from tidings.api.messages import router as messages_router
from tidings.api.notifications import router as notifications_router
from tidings.api.providers import router as providers_router
from tidings.api.sandbox import router as sandbox_router
from tidings.api.sandbox_emails import router as sandbox_emails_router
from tidings.api.sms import router as sms_router
from tidings.api.suppressions import router as suppressions_router
from tidings.api.templates import router as templates_router
from tidings.api.webhooks import router as webhooks_router
from tidings.api.whatsapp import router as whatsapp_router
from tidings.auth.router import router as auth_router
from tidings.auth.state_cache import TokenStateCache
from tidings.auth.throttle import LoginThrottle
from tidings.auth.tokens import TokenCodec
from tidings.channels.phone_reading import PhoneReadingMiddleware
from tidings.console import install_console
from tidings.console.headers import ConsoleHeadersMiddleware
from tidings.console.session import session_account_reader
from tidings.context import AppContext
from tidings.core.clock import Clock, SystemClock
from tidings.core.secrets import jwt_signing_key, secrets_key_ring
from tidings.core.shared_windows import SharedWindowCounter
from tidings.core.windows import FixedWindowCounter, WindowCounter
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.notify import WorkNotifier
from tidings.docs_site import install_docs
from tidings.http.body import BodyMiddleware
from tidings.http.callers import AuthenticationGate, CallerResolver
from tidings.http.edge import EdgeMiddleware
from tidings.http.environment import EnvironmentMiddleware
from tidings.http.metrics import HttpMetrics, MetricsMiddleware
from tidings.http.ops import OPS_PATHS
from tidings.http.ops import router as ops_router
from tidings.http.problems import install_problem_handlers
from tidings.http.ratelimit import RateLimitMiddleware
from tidings.http.request_id import RequestIdMiddleware
from tidings.http.shortcut import TidingsAPI
from tidings.http.transport import TransportSecurityMiddleware
from tidings.http.unexpected import UnexpectedErrorMiddleware
from tidings.inbound.router import router as inbound_router
from tidings.providers.registry import KindRegistry
from tidings.runtime import DeliveryRuntime
from tidings.settings import Settings
from tidings.tracking.router import router as tracking_router
from tidings.widget.access import widget_account_reader
from tidings.widget.install import install_widget

DESCRIPTION = """\
Tidings is a self-hostable messaging API for WhatsApp, SMS and Email.

* Authenticate with `POST /api/v4/auth/token` and send `Authorization: Bearer <token>`.
* The sandbox is the same API under `/sandbox` (or a configured sandbox host): nothing
  is sent, magic recipients trigger every failure path.
* Errors are `application/problem+json` with a stable `code`.
"""

# "/contacts" covers a list's additions (10,000 contacts with their variables).
# Providers' webhooks: Meta documents payloads of up to 3 MB.
INBOUND_MAX_BODY_BYTES = 4 * 1_048_576
# The serving process's garbage collector: generation 0 every 10,000 net allocations
# of containers (Python's default: 700), the older ones after 20 of the younger.
GC_THRESHOLDS = (10_000, 20, 20)
LARGE_BODY_PATHS = ("/bulk", "/contacts/import", "/email/send", "/contacts")


def rate_counter(settings: Settings) -> WindowCounter:
    """The rate limit's counts: in this process's memory, or shared by the processes
    of ``serve --workers N`` through a file of the data directory, so that an account
    gets its limit once, not once per process."""
    window = settings.rate_limit.window_seconds
    if settings.serve_workers > 1:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return SharedWindowCounter(settings.data_dir / "rate-windows", window)
    return FixedWindowCounter(window)


def login_throttle(settings: Settings) -> LoginThrottle:
    """The failed-login throttle, its counts shared as the rate limit's are."""
    if settings.serve_workers > 1:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        window = settings.login_throttle.window_seconds
        counts = SharedWindowCounter(settings.data_dir / "login-windows", window)
        return LoginThrottle(settings.login_throttle, counts=counts)
    return LoginThrottle(settings.login_throttle)


def build_context(
    settings: Settings, clock: Clock, kinds: KindRegistry | None = None
) -> AppContext:
    engine = build_engine(settings)
    sessions = build_sessionmaker(engine)
    signing_key = jwt_signing_key(settings)
    key_ring = secrets_key_ring(settings, signing_key)
    return AppContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        tokens=TokenCodec(
            signing_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            clock=clock,
        ),
        login_throttle=login_throttle(settings),
        rate_counter=rate_counter(settings),
        runtime=DeliveryRuntime(
            settings,
            sessions,
            clock,
            notifier=WorkNotifier(settings),
            key_ring=key_ring,
            kinds=kinds,
        ),
        token_states=TokenStateCache(),
        key_ring=key_ring,
    )


DOC_SECTIONS = (
    "Authentication",
    "Account",
    "WhatsApp",
    "SMS",
    "Email",
    "Messages",
    "Sandbox",
    "Bulk",
    "Webhooks",
    "Chat widget",
    "Contacts",
    "Providers",
)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    kinds: KindRegistry | None = None,
) -> FastAPI:
    """The application; ``kinds`` replaces the provider kinds (tests add their own)."""
    settings = settings or Settings()
    ctx = build_context(settings, clock or SystemClock(), kinds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.runtime.start(dispatch=settings.dispatch)
        try:
            yield
        finally:
            await ctx.runtime.stop()
            await ctx.engine.dispose()

    # The hot send routes are answered from the application's entry (http/shortcut.py).
    app = TidingsAPI(
        title="Tidings API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # The documentation's order, whatever order the routes are matched in.
        openapi_tags=[{"name": name} for name in DOC_SECTIONS],
    )
    app.state.ctx = ctx
    app.state.metrics = HttpMetrics()
    # Set by /readyz once every worker of ``serve --workers N`` listens (http/ops.py).
    app.state.workers_listening = False
    install_problem_handlers(app)

    # Routes are matched in order: the health checks that load balancers call many
    # times a second and the sends come first.
    app.include_router(ops_router)
    app.include_router(sms_router)
    app.include_router(auth_router)
    app.include_router(account_router)
    app.include_router(whatsapp_router)
    app.include_router(notifications_router)
    app.include_router(templates_router)
    app.include_router(chats_router)
    app.include_router(email_router)
    app.include_router(email_events_router)
    app.include_router(domains_router)
    app.include_router(suppressions_router)
    app.include_router(messages_router)
    app.include_router(sandbox_router)
    app.include_router(sandbox_emails_router)
    app.include_router(tracking_router)
    app.include_router(bulk_router)
    app.include_router(batches_router)
    app.include_router(webhooks_router)
    app.include_router(iframes_router)
    app.include_router(contacts_router)
    app.include_router(lists_router)
    app.include_router(providers_router)
    app.include_router(inbound_router)
    install_widget(app)
    install_console(app)
    install_docs(app, title="Tidings API", version=__version__, description=DESCRIPTION)

    # The application's own middleware, outermost first, run as one layer (see
    # tidings.http.edge): the same steps in the same order, one coroutine.
    app.add_middleware(
        EdgeMiddleware,
        layers=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, metrics=app.state.metrics),
            Middleware(
                TransportSecurityMiddleware,
                trusted_proxies=settings.trusted_proxies,
                hsts_max_age=settings.hsts_max_age_seconds,
                open_paths=OPS_PATHS,
                tls_configured=settings.tls_cert_file is not None,
            ),
            Middleware(EnvironmentMiddleware, sandbox_hosts=settings.sandbox_hosts),
            Middleware(
                RateLimitMiddleware,
                settings=settings.rate_limit,
                counter=ctx.rate_counter,
                callers=CallerResolver(partial(verify_bearer, ctx)),
                widget_account=widget_account_reader(ctx),
                session_account=session_account_reader(ctx),
            ),
            Middleware(AuthenticationGate, protected=routes_needing_principal(app.routes)),
            Middleware(
                BodyMiddleware,
                max_bytes=settings.max_body_bytes,
                large_body_paths=LARGE_BODY_PATHS,
                large_max_bytes=settings.max_bulk_body_bytes,
                prefix_limits={"/inbound/": INBOUND_MAX_BODY_BYTES},
                raw_media_types={
                    "/api/v4/contacts/import": frozenset({"text/csv", "multipart/form-data"})
                },
            ),
            Middleware(
                PhoneReadingMiddleware,
                country=settings.phone_default_country,
                accounts=AccountCountries(ctx.sessions),
            ),
            Middleware(UnexpectedErrorMiddleware),
            # Innermost, inside the environment's (it sees the path below /sandbox);
            # the unexpected-error 500 is answered outside it: a problem, not a page.
            Middleware(ConsoleHeadersMiddleware),
        ],
    )
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``tidings serve --workers N``)."""
    app = create_app(Settings())
    # What exists now (modules, routes, the schema's metadata) lives as long as the
    # process: frozen, the collector's full passes stop walking it on every request
    # burst. Once per serving process, never in tests, which make many apps.
    gc.collect()
    gc.freeze()
    # A request makes and drops many small containers (a send, several hundred): at
    # the default threshold (700) the young generation was collected every few
    # requests, about 90 us of CPU per single send (7 %), nearly all of it freeing
    # nothing. Collected every 10,000 instead, it costs a few us.
    gc.set_threshold(*GC_THRESHOLDS)
    return app
